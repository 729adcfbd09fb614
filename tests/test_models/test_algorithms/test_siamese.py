"""The declared two-view interface (siamese_step) gives, for MMPretrain's
MoCo, SimCLR, BYOL and SimSiam, the loss and state of the framework's own
``loss()`` bit for bit; RingMoCo equals MMPretrain's MoCo with the same
weights, queue and random state, and wraps around any batch size."""
import copy

import pytest
import torch
from mmengine.logging import MessageHub
from mmpretrain.models.selfsup import BYOL, MoCo, SimCLR, SimSiam

from mmssl_ext.models.algorithms import RingMoCo, siamese_step
from mmssl_ext.registry import MODELS

BB = dict(type='ResNet_CIFAR', depth=18, stem_channels=4, base_channels=4,
          norm_cfg=dict(type='BN'), zero_init_residual=False)
CE = dict(type='CrossEntropyLoss')
MOCO_NECK = dict(type='MoCoV2Neck', in_channels=32, hid_channels=16,
                 out_channels=8)
LATENT = dict(
    neck=dict(type='NonLinearNeck', in_channels=32, hid_channels=16,
              out_channels=8, with_avg_pool=True),
    head=dict(type='LatentPredictHead',
              loss=dict(type='CosineSimilarityLoss'),
              predictor=dict(type='NonLinearNeck', in_channels=8,
                             hid_channels=16, out_channels=8,
                             with_avg_pool=False)))
FRAMEWORKS = dict(
    MoCo=dict(type='MoCo', neck=MOCO_NECK, queue_len=8, feat_dim=8,
              momentum=0.9,
              head=dict(type='ContrastiveHead', loss=CE, temperature=0.2)),
    SimCLR=dict(type='SimCLR',
                neck=dict(type='NonLinearNeck', in_channels=32,
                          hid_channels=16, out_channels=8),
                head=dict(type='ContrastiveHead', loss=CE,
                          temperature=0.5)),
    BYOL=dict(type='BYOL', base_momentum=0.01, **LATENT),
    SimSiam=dict(type='SimSiam', **LATENT),
    RingMoCo=dict(type='RingMoCo', neck=MOCO_NECK, queue_len=10, feat_dim=8,
                  momentum=0.1,
                  head=dict(type='ContrastiveHead', loss=CE,
                            temperature=0.2)),
)
OWN_LOSS = dict(MoCo=MoCo.loss, SimCLR=SimCLR.loss, BYOL=BYOL.loss,
                SimSiam=SimSiam.loss, RingMoCo=RingMoCo.loss)


def _views(b=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(b, 3, 16, 16, generator=g) for _ in range(2)]


@pytest.fixture(autouse=True)
def _max_iters():  # BYOL's CosineEMA reads it
    MessageHub.get_current_instance().update_info('max_iters', 10)


@pytest.mark.parametrize('name', sorted(FRAMEWORKS))
def test_step_is_the_frameworks_own_loss(name):
    torch.manual_seed(0)
    model = MODELS.build(dict(FRAMEWORKS[name], backbone=BB))
    twin = copy.deepcopy(model)
    for step in range(2):
        views = _views(seed=step)
        torch.manual_seed(10 + step)
        own = OWN_LOSS[name](twin, views, None)['loss']
        torch.manual_seed(10 + step)
        out = siamese_step(model, views)
        out.commit()
        assert torch.equal(out.loss, own), (name, step)
        for (k, a), b in zip(model.state_dict().items(),
                             twin.state_dict().values()):
            assert torch.equal(a, b), (name, k)
    assert len(out.online) == (1 if 'MoCo' in name else 2)
    assert out.online[0].requires_grad
    assert all(not t.requires_grad for t in out.targets.values())


def test_moco_targets_and_negatives_are_what_the_loss_saw():
    torch.manual_seed(0)
    model = MODELS.build(dict(FRAMEWORKS['MoCo'], backbone=BB))
    queue = model.queue.clone()
    views = _views()
    out = siamese_step(model, views)
    assert torch.equal(out.negatives, queue.t())  # not yet enqueued
    assert torch.equal(model.queue, queue)
    k0 = out.target(0)  # computed on demand: momentum keys of view 0
    torch.testing.assert_close(k0.norm(dim=1), torch.ones(4))
    assert 0 in out.targets and k0 is out.target(0)
    out.commit()
    assert torch.equal(model.queue[:, :4], out.targets[1].t())


def test_ring_moco_equals_mmpretrain_moco():
    torch.manual_seed(0)
    moco = MODELS.build(dict(FRAMEWORKS['MoCo'], backbone=BB))
    ring = MODELS.build(dict(FRAMEWORKS['RingMoCo'], backbone=BB,
                             queue_len=8, momentum=0.1))
    sd = moco.state_dict()
    sd['queue.queue'] = sd.pop('queue').t().contiguous()
    sd['queue.ptr'] = sd.pop('queue_ptr')[0]
    ring.load_state_dict(sd)
    for step in range(3):
        views = _views(seed=step)
        torch.manual_seed(step)
        a = moco.loss(views, None)['loss']
        torch.manual_seed(step)
        b = ring.loss(views, None)['loss']
        if step == 0:
            assert torch.equal(a, b)
        # the ring re-normalises the keys it stores: equal to rounding
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(moco.queue.t(), ring.queue.queue,
                                   rtol=0, atol=1e-7)


def test_ring_moco_wraps_around_odd_batches():
    torch.manual_seed(0)
    ring = MODELS.build(dict(FRAMEWORKS['RingMoCo'], backbone=BB))
    queue0 = ring.queue.queue.clone()
    for b in (4, 3, 4):  # 11 keys into a ring of 10 (MoCo would assert)
        ring.loss(_views(b), None)
    assert int(ring.queue.ptr) == 1
    assert (ring.queue.queue != queue0).any(1).all()


def test_two_views_are_required():
    torch.manual_seed(0)
    model = MODELS.build(dict(FRAMEWORKS['SimSiam'], backbone=BB))
    with pytest.raises(ValueError, match='num_views=2'):
        siamese_step(model, [_views()[0]])
    with pytest.raises(TypeError, match='two-view frameworks'):
        siamese_step(torch.nn.Linear(2, 2), _views())


@pytest.mark.parametrize('neg_num', [5, None], ids=['sampled', 'full'])
def test_npid_step_is_npids_own_loss(neg_num):
    from mmpretrain.structures import DataSample

    from mmssl_ext.models.algorithms import NPID
    torch.manual_seed(0)
    model = MODELS.build(dict(
        type='NPID', backbone=BB, neg_num=neg_num,
        neck=dict(type='LinearNeck', in_channels=32, out_channels=8,
                  gap_dim=2),
        head=dict(type='ContrastiveHead', loss=CE, temperature=0.1),
        memory=dict(type='FeatureMemory', length=12, feat_dim=8)))
    twin = copy.deepcopy(model)
    for step in range(2):
        views = _views(seed=step)
        samples = [DataSample(metainfo=dict(sample_idx=i))
                   for i in (step, 3, 7, 11)]
        own = NPID.loss(twin, views, samples)['loss']
        out = siamese_step(model, views, samples)
        out.commit()
        assert torch.equal(out.loss, own), step
        for (k, a), b in zip(model.state_dict().items(),
                             twin.state_dict().values()):
            assert torch.equal(a, b), (step, k)
    assert out.framework == 'npid' and out.views == [0, 1]
    assert out.queries[0] is not None and out.negatives is None


@pytest.mark.parametrize('name', sorted(FRAMEWORKS))
def test_step_exposes_what_branches_read(name):
    """Backbone features, whole neck outputs and queries of the online
    views are those of the online encoder; a view the framework did not run
    online is run on request; MoCo's momentum features give its keys."""
    import torch.nn.functional as F
    torch.manual_seed(0)
    model = MODELS.build(dict(FRAMEWORKS[name], backbone=BB))
    views = _views()
    step = siamese_step(model, views)
    with torch.no_grad():  # BN in train mode: same batch, same output
        if name == 'SimCLR':  # one pass over both views
            x = torch.stack(views, 1).flatten(0, 1)
            f = model.backbone(x)[-1]
            feats = [f.view((4, 2) + f.shape[1:])[:, v] for v in (0, 1)]
        else:
            feats = [model.backbone(x)[-1] for x in views]
    for i, v in enumerate(step.views):
        assert torch.equal(step.projection(v), step.online[i])
        torch.testing.assert_close(step.feature(v)[-1], feats[v])
        torch.testing.assert_close(step.query(v),
                                   F.normalize(step.online[i], dim=1))
    if 'MoCo' in name:
        assert step.views == [0] and step.pair == (0, 1)
        assert step.query(0) is step.queries[0]  # the loss's own tensor
        f, restore = step.target_features[1]
        k = F.normalize(restore(model.encoder_k.module[1](f)[0]), dim=1)
        assert torch.equal(k, step.targets[1])
        # the key view through the online encoder, on request
        torch.testing.assert_close(step.feature(1)[-1], feats[1])
    else:
        assert step.views == [0, 1] and step.pair == (0, 1)
    assert step.framework == {'MoCo': 'moco', 'RingMoCo': 'moco'}.get(
        name, name.lower())


def test_canaries_of_the_upstream_members_the_adapters_use():
    """The adapters of ``siamese.py`` read MMPretrain internals; each member
    they rely on is checked here, per method, so that an MMPretrain upgrade
    that moves one fails with its name (the bit-for-bit tests above then
    say whether the numbers still agree)."""
    import inspect
    from mmengine.model import ExponentialMovingAverage
    from mmpretrain.models.selfsup.simclr import GatherLayer
    from mmpretrain.models.utils import (batch_shuffle_ddp,
                                         batch_unshuffle_ddp)
    torch.manual_seed(0)
    moco = MODELS.build(dict(FRAMEWORKS['MoCo'], backbone=BB))
    # MoCo: the EMA encoder (backbone, neck), the (D, L) queue and its
    # enqueue, shuffle-BN helpers
    assert isinstance(moco.encoder_k, ExponentialMovingAverage)
    assert moco.encoder_k.module[0] is not moco.backbone
    assert tuple(moco.queue.shape) == (8, 8)  # (feat_dim, queue_len)
    assert callable(moco._dequeue_and_enqueue)
    x = torch.randn(4, 3, 16, 16)
    shuffled, idx = batch_shuffle_ddp(x)
    assert torch.equal(batch_unshuffle_ddp(shuffled, idx), x)
    # SimCLR: the in-batch masks and the gather with gradient
    simclr = MODELS.build(dict(FRAMEWORKS['SimCLR'], backbone=BB))
    mask, pos_idx, neg_mask = simclr._create_buffer(4, torch.device('cpu'))
    assert mask.shape == (8, 8) and neg_mask.shape == (8, 7)
    assert len(pos_idx) == 2  # (row, column) indices of the positives
    assert issubclass(GatherLayer, torch.autograd.Function)
    # BYOL: the target network (an EMA of backbone + neck) and its update
    byol = MODELS.build(dict(FRAMEWORKS['BYOL'], backbone=BB))
    assert callable(byol.target_net.update_parameters)
    assert byol.target_net(x)[0].shape == (4, 8)
    # every framework: head.loss with the arguments the adapters pass
    for name in ('MoCo', 'SimCLR', 'BYOL', 'SimSiam'):
        model = moco if name == 'MoCo' else MODELS.build(
            dict(FRAMEWORKS[name], backbone=BB))
        params = list(inspect.signature(model.head.loss).parameters)
        assert len(params) >= 2, (name, params)
