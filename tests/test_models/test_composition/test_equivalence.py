"""The method classes are compositions of a framework and branches with the
numerics they had as classes of their own: the frozen classes of
``frozen.py`` (the code before the composition), the registered class of
today (``InterCLRMoCo``, ``NPIDCLD``, ``MoCoCLD``, ``BSIM*``) and the same
model written as ``ComposedSSL(base=..., branches=[...])`` get the same
weights and state, the same inputs and the same random state, and train for
three SGD steps: every loss of every step and the whole state afterwards
(weights, momentum encoders, queues, memories, pseudo-labels, counters) are
equal."""
import copy

import pytest
import torch
from mmengine.logging import MessageHub
from mmpretrain.structures import DataSample

from mmssl_ext.registry import MODELS
from . import frozen
from .tiny import BB, CE, CLD_NECK, FRAMEWORKS, MOCO_NECK, N

STEPS = 3


@pytest.fixture(autouse=True)
def _max_iters():  # BYOL's CosineEMA reads it
    MessageHub.get_current_instance().update_info('max_iters', 10)


def _batches(n_views, b=4, size=16, labels=False):
    g = torch.Generator().manual_seed(7)
    out = []
    for step in range(STEPS):
        views = [torch.randn(b, 3, size, size, generator=g)
                 for _ in range(n_views)]
        idx = torch.randperm(N, generator=g)[:b].tolist()
        samples = []
        for i in idx:
            s = DataSample(metainfo=dict(sample_idx=i))
            if labels:
                s.set_gt_label(i % 3)
            samples.append(s)
        out.append((views, samples))
    return out


def _train(model, batches):
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    logs = []
    for step, (views, samples) in enumerate(batches):
        torch.manual_seed(100 + step)  # shuffle-BN, mixing draws
        losses = model.loss([v.clone() for v in views], samples)
        loss, _ = model.parse_losses(losses)
        opt.zero_grad()
        loss.backward()
        opt.step()
        logs.append({k: v.detach().clone() for k, v in losses.items()})
    return logs


def _renamed(state, pairs):
    out = {}
    for k, v in state.items():
        for old, new in pairs:
            if k.startswith(old):
                k = new + k[len(old):]
                break
        out[k] = v
    return out


def _check(reference, models, batches, pairs=()):
    """Train ``reference`` (a frozen class) and each of ``models`` (built
    with its state, old keys mapped by ``pairs``) on ``batches``."""
    state = {k: v.clone() for k, v in reference.state_dict().items()}
    logs_ref = _train(reference, batches)
    final = _renamed(reference.state_dict(), pairs)
    for model in models:
        missing, unexpected = model.load_state_dict(
            _renamed(state, pairs), strict=False)
        assert not missing and not unexpected, (missing, unexpected)
        logs = _train(model, batches)
        for step, (want, got) in enumerate(zip(logs_ref, logs)):
            assert list(got) == list(want), (type(model).__name__, step)
            for key in want:
                assert torch.equal(got[key], want[key]), (
                    type(model).__name__, step, key, got[key], want[key])
        got_state = model.state_dict()
        assert set(got_state) == set(final), set(got_state) ^ set(final)
        for key, value in final.items():
            assert torch.equal(got_state[key], value), (
                type(model).__name__, key)


# ------------------------------------------------------------- InterCLR
INTERCLR = dict(
    backbone=BB, neck=MOCO_NECK,
    head=dict(type='MarginContrastiveHead', loss=CE, temperature=0.2),
    memory=dict(type='ClusterMemory', length=N, num_clusters=3,
                momentum=1.0, min_cluster=2, init='data', feat_dim=8),
    queue_len=16, feat_dim=8, momentum=0.01, neg_num=5,
    semihard_neg_pool_num=10, semieasy_neg_pool_num=10, sampling_seed=3)
INTERCLR_KEYS = (('memory.', 'branches.0.memory.'),
                 ('inter_neck_k.', 'branches.0.neck_k.'),
                 ('inter_neck.', 'branches.0.neck.'),
                 ('sampling_', 'branches.0.sampling_'))


def _interclr_as_composed(cfg):
    cfg = copy.deepcopy(cfg)
    branch = dict(
        type='InterImageBranch', memory=cfg.pop('memory'),
        loss_weight=cfg.pop('inter_loss_weight', 0.25),
        neck=copy.deepcopy(cfg['neck']) if not cfg.pop('share_neck', True)
        else None)
    for k in ('neg_num', 'semihard_neg_pool_num', 'semieasy_neg_pool_num',
              'sampling_seed', 'neg_sampling'):
        if k in cfg:
            branch[k] = cfg.pop(k)
    return dict(type='ComposedSSL', base=dict(cfg, type='RingMoCo'),
                branches=[branch], base_loss_weight=0.75,
                base_loss_key='loss_intra')


@pytest.mark.parametrize('kw', [
    dict(),
    dict(share_neck=False),
    dict(neg_sampling='hard'),
], ids=['shared-neck', 'own-neck', 'hard'])
def test_interclr(kw):
    cfg = dict(INTERCLR, **kw)
    torch.manual_seed(0)
    ref = frozen.FrozenInterCLRMoCo(**copy.deepcopy(cfg))
    g = torch.Generator().manual_seed(1)
    ref.memory.init_memory(torch.randn(N, 8, generator=g),
                           torch.arange(N) % 3)
    models = [MODELS.build(dict(copy.deepcopy(cfg), type='InterCLRMoCo')),
              MODELS.build(_interclr_as_composed(cfg))]
    assert type(models[1]).__name__ == 'ComposedRingMoCo'
    _check(ref, models, _batches(2), INTERCLR_KEYS)


# ------------------------------------------------------------------ CLD
def test_npid_cld():
    cfg = dict(backbone=BB, neck=CLD_NECK,
               memory=dict(type='FeatureMemory', length=N, feat_dim=8),
               group_head=dict(type='CLDGroupHead', num_groups=2,
                               temperature=0.3, loss_weight=0.5),
               temperature=0.1)
    torch.manual_seed(0)
    ref = frozen.FrozenNPIDCLD(**copy.deepcopy(cfg))
    composed = dict(
        type='ComposedSSL',
        base=dict(type='NPID', backbone=BB, neck=CLD_NECK,
                  memory=cfg['memory'], neg_num=None,
                  head=dict(type='ContrastiveHead', loss=CE,
                            temperature=0.1)),
        branches=[dict(type='GroupBranch', num_groups=2, temperature=0.3,
                       loss_weight=0.5)],
        base_loss_key='loss_inst')
    models = [MODELS.build(dict(copy.deepcopy(cfg), type='NPIDCLD')),
              MODELS.build(composed)]
    _check(ref, models, _batches(2, labels=True))


@pytest.mark.parametrize('key_view', [1, 2])
def test_moco_cld(key_view):
    cfg = dict(backbone=BB, neck=CLD_NECK,
               head=dict(type='ContrastiveHead', loss=CE, temperature=0.2),
               group_head=dict(type='CLDGroupHead', num_groups=2,
                               temperature=0.4, loss_weight=0.25),
               queue_len=10, feat_dim=8, momentum=0.01, key_view=key_view)
    torch.manual_seed(0)
    ref = frozen.FrozenMoCoCLD(**copy.deepcopy(cfg))
    composed = dict(
        type='ComposedSSL',
        base=dict(type='RingMoCo', backbone=BB, neck=CLD_NECK,
                  head=cfg['head'], queue_len=10, feat_dim=8, momentum=0.01,
                  key_view=key_view, num_views=3),
        branches=[dict(type='GroupBranch', num_groups=2, temperature=0.4,
                       loss_weight=0.25)],
        base_loss_key='loss_inst')
    models = [MODELS.build(dict(copy.deepcopy(cfg), type='MoCoCLD')),
              MODELS.build(composed)]
    _check(ref, models, _batches(3))


# ----------------------------------------------------------------- BSIM
@pytest.mark.parametrize('mixture', [
    dict(mix_mode='mixup'),
    dict(mix_mode='both', mixed_view='both', pairing='random',
         symmetric_mix=True, beta_weight=0.5),
], ids=['default', 'knobs'])
@pytest.mark.parametrize('name', ['BYOL', 'MoCo', 'SimCLR', 'SimSiam'])
def test_bsim(name, mixture):
    cfg = dict(FRAMEWORKS[name], backbone=BB)
    torch.manual_seed(0)
    ref = getattr(frozen, f'FrozenBSIM{name}')(
        mixture=copy.deepcopy(mixture), **copy.deepcopy(cfg))
    branch = dict(mixture, type='MixtureBranch')
    branch['loss_weight'] = branch.pop('beta_weight', 1.0)
    composed = dict(type='ComposedSSL', base=dict(cfg, type=name),
                    branches=[branch])
    models = [MODELS.build(dict(copy.deepcopy(cfg), type=f'BSIM{name}',
                                mixture=copy.deepcopy(mixture))),
              MODELS.build(composed)]
    _check(ref, models, _batches(2))
