"""ComposedSSL: every branch on every framework; the framework's loss and
state untouched by the branches; what the inter-image and group branches
contrast against on the frameworks without negatives (BYOL, SimSiam), by
hand; a stack of all three branches; errors; weights scheduled by dotted
path; config checking of the composed configs."""
import copy
import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from mmengine.logging import MessageHub
from mmpretrain.models.selfsup import BYOL, MoCo, SimCLR, SimSiam

from mmssl_ext.models.interfaces import LossWeighted
from mmssl_ext.models.algorithms import NPID, RingMoCo
from mmssl_ext.models.memories import ClusterMemory, find_memories
from mmssl_ext.registry import HOOKS, MODELS
from .tiny import (BB, FRAMEWORKS, N, batch, composed, fill_memories,
                   framework, group_branch, inter_branch, mixture_branch)

BASES = dict(MoCo=MoCo, SimCLR=SimCLR, BYOL=BYOL, SimSiam=SimSiam,
             RingMoCo=RingMoCo, NPID=NPID)
KEYS = dict(inter={'loss_inter', 'neg_widened', 'change_ratio'},
            group={'loss_group', 'group_acc', 'group_purity'},
            mixture={'loss_bsim', 'bsim_lambda', 'bsim_mixup'})
CASES = [(f, b) for f in FRAMEWORKS for b in KEYS
         if not (f == 'NPID' and b == 'mixture')]


@pytest.fixture(autouse=True)
def _max_iters():  # BYOL's CosineEMA reads it
    MessageHub.get_current_instance().update_info('max_iters', 10)


def _build(cfg):
    torch.manual_seed(0)
    model = MODELS.build(copy.deepcopy(cfg))
    fill_memories(model)
    model.train()
    return model


@pytest.mark.parametrize('fw, branch', CASES)
def test_every_branch_on_every_framework(fw, branch):
    model = _build(composed(fw, branch))
    assert isinstance(model, BASES[fw])
    assert type(model).__name__ == f'Composed{fw}'
    views, samples = batch([0, 5, 9, 17], labels=True)
    out = model.loss(views, samples)
    assert set(out) == {'loss_base'} | KEYS[branch]
    assert all(torch.isfinite(v).all() for v in out.values())
    # the branch's term alone reaches the backbone
    term = next(v for k, v in out.items()
                if k.startswith('loss') and k != 'loss_base')
    term.backward()
    grad = model.backbone.conv1.weight.grad
    assert grad is not None and grad.abs().sum() > 0
    model.zero_grad()
    out = model.loss(*batch([1, 2, 3, 4], seed=1))  # a second step
    model.parse_losses(out)[0].backward()
    # the framework's state keeps its names (its checkpoints' tools work),
    # the branches' lives under branches.<i>
    keys = model.state_dict().keys()
    plain = MODELS.build(framework(fw))
    assert {k for k in keys if not k.startswith('branches.')} == set(
        plain.state_dict())
    assert torch.equal(model.extract_feat(views[0])[-1],
                       model.backbone(views[0])[-1])


@pytest.mark.parametrize('fw', sorted(FRAMEWORKS))
def test_branches_leave_the_framework_loss_and_state_alone(fw):
    """All branches on one framework: ``loss_base`` is the framework's own
    loss() on the same state and random state, bit for bit, and the
    framework's own state (queue, momentum encoder, target network, bank)
    ends where its own loss() puts it. Only the BN running statistics see
    more batches (the branches' own forwards; momentum encoders copy them
    from the online encoder)."""
    names = ['inter', 'group'] + (['mixture'] if fw != 'NPID' else [])
    model = _build(composed(fw, *names))
    plain = MODELS.build(framework(fw))
    plain.load_state_dict(model.state_dict(), strict=False)
    plain.train()
    for step in range(2):
        views, samples = batch([0, 5, 9, 17], seed=step)
        torch.manual_seed(10 + step)
        own = plain.loss(views, samples)['loss']
        torch.manual_seed(10 + step)
        out = model.loss(views, samples)
        assert torch.equal(out['loss_base'], own), step
    mine = model.state_dict()
    for k, v in plain.state_dict().items():
        if k.split('.')[-1] in ('running_mean', 'running_var',
                                'num_batches_tracked'):
            continue
        assert torch.equal(mine[k], v), k


# ------------------------------------------ frameworks without negatives
def _ce0(logits):
    return -logits[0] + math.log(sum(math.exp(v) for v in logits))


@pytest.mark.parametrize('fw', ['BYOL', 'SimSiam'])
def test_inter_image_branch_contrasts_its_memory(fw):
    """BYOL and SimSiam have no negatives: the inter-image branch brings
    its own. 6 samples, pseudo-labels [0, 1, 2, 2, 2, 2]: anchors 0 and 1
    are alone in their class, so the positive is their own row, and 'hard'
    sampling with 5 negatives takes every other row. The query is the
    online projection of view 0; the memory rows get the framework's
    target of view 1 (BYOL: the target network's projection; SimSiam: the
    online projection, stop-gradient), replaced (momentum 1)."""
    branch = inter_branch(
        memory=dict(type='ClusterMemory', length=6, feat_dim=8,
                    num_clusters=3, momentum=1.0, min_cluster=0,
                    online_labels=False),
        neg_sampling='hard', neg_num=5)
    torch.manual_seed(0)
    model = MODELS.build(composed(fw, branch))
    memory = model.branches[0].memory
    g = torch.Generator().manual_seed(3)
    memory.init_memory(torch.randn(6, 8, generator=g),
                       torch.tensor([0, 1, 2, 2, 2, 2]))
    model.train()
    views, samples = batch([0, 1], seed=4)
    bank = memory.bank.clone()
    with torch.no_grad():  # BN in train mode: the same batch, same output
        q = F.normalize(model.neck(model.backbone(views[0]))[0], dim=1)
    out = model.loss(views, samples)
    want = 0.
    for i in range(2):
        logits = [(float(q[i] @ bank[i]) + 0.5) / 0.2]  # margin -0.5
        logits += [float(q[i] @ bank[j]) / 0.2 for j in range(6) if j != i]
        want += _ce0(logits) / 2
    assert out['loss_inter'].item() == pytest.approx(0.25 * want, rel=1e-4)
    with torch.no_grad():
        if fw == 'BYOL':  # the target network, as updated by this step
            target = model.target_net(views[1])[0]
        else:
            target = model.neck(model.backbone(views[1]))[0]
    torch.testing.assert_close(memory.bank[:2], F.normalize(target, dim=1),
                               atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(memory.bank[2:], bank[2:], rtol=0, atol=0)


@pytest.mark.parametrize('fw', ['BYOL', 'SimSiam', 'SimCLR', 'MoCo'])
def test_group_branch_contrasts_in_batch_groups_of_two_online_views(fw):
    """The group term is CLD's head on the branch's projection of the
    online backbone features of views 0 and 1 (the other view's in-batch
    centroids are its negatives). MoCo runs only view 0 online: its key
    view goes through the online backbone once more for the branch."""
    model = _build(composed(fw, 'group'))
    views, samples = batch([0, 5, 9, 17], labels=True, seed=2)
    seen = []
    hook = model.backbone.register_forward_hook(
        lambda m, a, o: seen.append(a[0].shape[0]))
    out = model.loss(views, samples)
    hook.remove()
    branch = model.branches[0]
    with torch.no_grad():
        if fw == 'SimCLR':  # one backbone pass over both views (its BN)
            x = torch.stack(views, 1).flatten(0, 1)
            f = model.backbone(x)[-1]
            f = f.view((4, 2) + f.shape[1:])
            g = [branch.neck((f[:, v], ))[0] for v in (0, 1)]
        else:
            g = [branch.neck(model.backbone(x))[0] for x in views]
        want = branch.head.loss(g[0], g[1])
    assert out['loss_group'].item() == pytest.approx(
        branch.loss_weight * want['loss_group'].item(), rel=1e-5)
    assert out['group_acc'].item() == pytest.approx(want['group_acc'].item())
    online = {'SimCLR': [8]}.get(fw, [4, 4])
    assert seen == online, seen


def test_group_branch_reads_the_neck_group_output():
    """neck=None: the branch takes the second output of the framework's
    neck (a CLDNeck), as CLD's own recipes."""
    cfg = composed('RingMoCo', group_branch(neck=None))
    cfg['base']['neck'] = dict(type='CLDNeck', in_channels=32,
                               out_channels=8)
    model = _build(cfg)
    views, samples = batch([0, 1, 2, 3])
    out = model.loss(views, samples)
    with torch.no_grad():
        g0 = model.neck(model.backbone(views[0]))[1]
        g1 = model.neck(model.backbone(views[1]))[1]
        # RingMoCo with two views: view 0 online, view 1 the key
        want = model.branches[0].head.loss(g0, g1)['loss_group']
    assert out['loss_group'].item() == pytest.approx(
        model.branches[0].loss_weight * want.item(), rel=1e-5)


def test_stack_of_every_branch():
    """MoCo + inter-image + group + mixture: one enqueue per step, the
    memory rows get the very keys the queue gets, every term is logged."""
    model = _build(composed('MoCo', 'inter', 'group', 'mixture',
                            base_loss_weight=0.75))
    views, samples = batch([0, 5, 9, 17], labels=True)
    out = model.loss(views, samples)
    assert set(out) == {'loss_base'} | KEYS['inter'] | KEYS['group'] | \
        KEYS['mixture']
    assert int(model.queue_ptr) == 4
    keys = model.queue[:, :4].t()
    torch.testing.assert_close(model.branches[0].memory.bank[[0, 5, 9, 17]],
                               keys, rtol=1e-5, atol=1e-6)
    loss, _ = model.parse_losses(out)
    terms = [out[k] for k in ('loss_base', 'loss_inter', 'loss_group',
                              'loss_bsim')]
    torch.testing.assert_close(loss, sum(terms))
    assert len(find_memories(model, ClusterMemory)) == 1
    x = views[0]
    torch.testing.assert_close(model.clustering_feature(x),
                               model.neck(model.backbone(x))[0])


def test_weights_by_loss_key():
    """Every weighted term is scheduled by its log key (LossWeighted)."""
    model = _build(composed('SimSiam', 'inter', 'group', 'mixture'))
    assert isinstance(model, LossWeighted)
    assert model.loss_weights() == dict(loss_base=1., loss_inter=0.25,
                                        loss_group=0.5, loss_bsim=1.)
    params = dict(loss_base=1., loss_inter=0., loss_group=0., loss_bsim=0.)
    hook = HOOKS.build(dict(type='ModelParamScheduleHook', end=1,
                            params=params))
    runner = SimpleNamespace(model=model, epoch=0)
    hook.before_train(runner)
    hook.before_train_epoch(runner)
    out = model.loss(*batch([0, 1, 2, 3]))
    for key in ('loss_inter', 'loss_group', 'loss_bsim'):
        assert out[key].item() == 0., key
    runner.epoch = 1
    hook.before_train_epoch(runner)
    assert [b.loss_weight for b in model.branches] == [0.25, 0.5, 1.0]
    bad = HOOKS.build(dict(type='ModelParamScheduleHook', end=1,
                           params=dict(loss_nope=0.)))
    with pytest.raises(TypeError, match='loss_nope'):
        bad.before_train(runner)


def test_deepcopy_and_data_preprocessor():
    pre = dict(type='SelfSupDataPreprocessor', mean=[1.] * 3, std=[2.] * 3)
    model = _build(composed('BYOL', 'group', data_preprocessor=pre))
    assert model.data_preprocessor.std.flatten().tolist() == [2.] * 3
    twin = copy.deepcopy(model)
    assert type(twin) is type(model)
    assert type(MODELS.build(composed('BYOL'))) is type(model)


# ------------------------------------------------------------- errors
@pytest.mark.parametrize('cfg, error, match', [
    (dict(type='ComposedSSL', base=dict(type='ODC', backbone=BB)),
     TypeError, 'two-view frameworks'),
    (dict(type='ComposedSSL', base=dict(FRAMEWORKS['MoCo'], backbone=BB,
                                        type='BSIMMoCo')),
     TypeError, 'already carries branches'),
    (dict(type='ComposedSSL', base=dict(type='NoSuchModel')),
     KeyError, 'model.base.type'),
    (composed('NPID', 'mixture'), ValueError,
     r'branches\[0\].*MoCo, SimCLR, BYOL or SimSiam'),
    (composed('BYOL', inter_branch(neck=dict(
        type='MoCoV2Neck', in_channels=32, hid_channels=16,
        out_channels=8))), ValueError, r'branches\[0\].neck.*BYOL'),
    (composed('SimCLR', inter_branch(momentum=0.1)), ValueError,
     r'branches\[0\].momentum'),
    (composed('MoCo', 'group', 'group'), ValueError,
     r"branches\[1\].*'loss_group'"),
    (composed('MoCo', dict(type='CLDGroupHead', num_groups=2)), TypeError,
     r'branches\[0\] must be a branch'),
    (composed('MoCo', base_loss_key='base'), ValueError, 'base_loss_key'),
    (composed('MoCo', base_loss_weight=-1), ValueError, 'base_loss_weight'),
    (composed('MoCo', inter_branch(loss_weight=-0.5)), ValueError,
     'loss_weight'),
    (composed('MoCo', inter_branch(memory=dict(
        type='ClusterMemory', length=N, num_clusters=3))), ValueError,
     'memory.feat_dim'),
    (composed('MoCo', mixture_branch(loss_weight=-1.)), ValueError,
     'loss_weight'),
])
def test_bad_configs(cfg, error, match):
    with pytest.raises(error, match=match):
        MODELS.build(cfg)


def test_errors_at_the_first_step():
    model = _build(composed('MoCo', group_branch(neck=None)))
    with pytest.raises(ValueError, match='no group projection'):
        model.loss(*batch([0, 1, 2, 3]))
    model = _build(composed('MoCo', inter_branch(memory=dict(
        type='ClusterMemory', length=N, feat_dim=4, num_clusters=3))))
    with pytest.raises(ValueError, match=r'branches\[0\].memory.feat_dim=4'):
        model.loss(*batch([0, 1, 2, 3]))
    model = MODELS.build(composed('SimSiam', 'inter'))  # not clustered yet
    with pytest.raises(RuntimeError, match='OfflineClusterHook'):
        model.loss(*batch([0, 1, 2, 3]))
    model = _build(composed('NPID', 'group'))
    with pytest.raises(ValueError, match='num_views=2'):
        model.loss(*batch([0, 1, 2, 3], n_views=1))


def test_config_check_knows_the_composed_configs():
    from mmssl_ext.utils.config_check import find_unknown_arguments
    cfg = dict(model=composed('MoCo', 'inter', 'group'))
    assert find_unknown_arguments(cfg) == []
    cfg['model']['branch'] = []
    cfg['model']['branches'][1]['num_group'] = 2
    problems = find_unknown_arguments(cfg)
    assert len(problems) == 2
    assert "unknown argument 'branch'; did you mean 'branches'" in problems[0]
    assert "model.branches[1] (GroupBranch): unknown argument 'num_group'" \
        in problems[1]
