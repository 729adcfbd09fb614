"""NPIDCLD / MoCoCLD: instance losses, memory/queue updates and wiring,
checked by hand on a toy encoder whose features are the pooled pixels."""
import math

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmpretrain.structures import DataSample

from mmssl_ext.models.cld.cld import MoCoCLD, NPIDCLD
from mmssl_ext.models.memories import check_memories
from mmssl_ext.registry import MODELS


class PoolEncoder(nn.Module):
    """``(x * scale,)``: with an identity projection the feature of an image
    is its mean pixel per channel, so every logit can be written by hand."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x):
        return (x * self.scale, )


def _identity_neck(dim=3, group=True, proj_type='linear'):
    neck = MODELS.build(dict(type='CLDNeck', in_channels=dim,
                             out_channels=dim, with_group=group,
                             proj_type=proj_type))
    with torch.no_grad():
        for proj in (neck.inst_proj, neck.group_proj):
            if proj is not None:
                proj.weight.copy_(torch.eye(dim))
                proj.bias.zero_()
    return neck


def _samples(idx):
    return [DataSample(metainfo=dict(sample_idx=int(i))) for i in idx]


def _views(n_views, b=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(b, 3, 2, 2, generator=g) + 0.1 for _ in range(n_views)]


def _unit(v):
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _ce0(logits, target):
    m = max(logits)
    return m + math.log(sum(math.exp(v - m) for v in logits)) - logits[target]


def _npid(group_head=True, length=6, momentum=0.5, temperature=0.1):
    return NPIDCLD(
        backbone=PoolEncoder(),
        neck=_identity_neck(group=group_head),
        memory=dict(type='FeatureMemory', length=length, feat_dim=3,
                    momentum=momentum),
        group_head=dict(type='GroupBranch', num_groups=2, temperature=0.2,
                        loss_weight=0.5) if group_head else None,
        temperature=temperature)


def test_npid_full_softmax_and_bank_by_hand():
    model = _npid()
    bank0 = model.memory.bank.clone().double().numpy()
    x1, x2 = _views(2)
    idx = [4, 0, 2]
    losses = model.loss([x1, x2], _samples(idx))
    assert set(losses) == {'loss_inst', 'loss_group', 'group_acc'}

    f = [_unit(x.mean((2, 3)).numpy()) for x in (x1, x2)]
    ref = 0.
    for fv in f:  # CE over all N=6 bank entries, tau 0.1, target = own idx
        for i, t in enumerate(idx):
            ref += _ce0(list(bank0 @ fv[i] / 0.1), t) / (3 * 2)
    assert losses['loss_inst'].item() == pytest.approx(ref, rel=1e-5)

    # two updates per iteration, view 2 first (autograd order of the
    # official in-backward update), m = 0.5
    exp = bank0.copy()
    for fv in (f[1], f[0]):
        for i, t in enumerate(idx):
            exp[t] = _unit(0.5 * exp[t] + 0.5 * fv[i])
    np.testing.assert_allclose(model.memory.bank.numpy(), exp, atol=1e-6)
    untouched = [1, 3, 5]
    np.testing.assert_array_equal(model.memory.bank.numpy()[untouched],
                                  bank0[untouched].astype(np.float32))

    # the group term is the (hand-checked) head on the normalised pooled
    # group features, weighted by lambda=0.5
    g = [torch.from_numpy(fv).float() for fv in f]
    ref_g = model.branches[0].head.loss(g[0], g[1])
    assert losses['loss_group'].item() == pytest.approx(
        0.5 * ref_g['loss_group'].item(), rel=1e-5)
    total = losses['loss_inst'] + losses['loss_group']
    total.backward()
    assert model.neck.group_proj.weight.grad.abs().sum() > 0
    assert model.neck.inst_proj.weight.grad.abs().sum() > 0


def test_npid_without_group_is_exactly_npid():
    model = _npid(group_head=False)
    bank0 = model.memory.bank.clone().double().numpy()
    (x, ) = _views(1, seed=3)
    idx = [1, 5, 3]
    losses = model.loss([x], _samples(idx))
    assert set(losses) == {'loss_inst'}
    fv = _unit(x.mean((2, 3)).numpy())
    ref = sum(_ce0(list(bank0 @ fv[i] / 0.1), t)
              for i, t in enumerate(idx)) / 3
    assert losses['loss_inst'].item() == pytest.approx(ref, rel=1e-5)
    exp = bank0.copy()
    for i, t in enumerate(idx):
        exp[t] = _unit(0.5 * exp[t] + 0.5 * fv[i])
    np.testing.assert_allclose(model.memory.bank.numpy(), exp, atol=1e-6)


def test_mococld_three_views_by_hand():
    model = MoCoCLD(
        backbone=PoolEncoder(),
        neck=_identity_neck(),
        head=dict(type='ContrastiveHead', loss=dict(type='CrossEntropyLoss'),
                  temperature=0.5),
        group_head=dict(type='GroupBranch', num_groups=2),
        queue_len=8, feat_dim=3, momentum=0.001)
    queue0 = model.queue.queue.clone().double().numpy()
    views = _views(3, seed=1)
    losses = model.loss(views, _samples([0, 1, 2]))
    assert set(losses) == {'loss_inst', 'loss_group', 'group_acc'}
    q1, q2, k = (_unit(v.mean((2, 3)).numpy()) for v in views)  # key = x3
    ref = 0.
    for q in (q1, q2):
        for i in range(3):
            logits = [q[i] @ k[i] / 0.5] + list(queue0 @ q[i] / 0.5)
            ref += _ce0(logits, 0) / 6
    assert losses['loss_inst'].item() == pytest.approx(ref, rel=1e-5)
    # queue: k written once at slots 0..2, pointer moved by the batch
    np.testing.assert_allclose(model.queue.queue.numpy()[:3], k, atol=1e-6)
    np.testing.assert_array_equal(model.queue.queue.numpy()[3:],
                                  queue0[3:].astype(np.float32))
    assert int(model.queue.ptr) == 3
    assert int(model.encoder_k.steps) == 1
    (losses['loss_inst'] + losses['loss_group']).backward()
    assert model.neck.group_proj.weight.grad.abs().sum() > 0
    # the momentum encoder gets no gradient
    assert all(p.grad is None for p in model.encoder_k.parameters())
    # second step: pointer wraps around the 8-slot ring
    model.loss(_views(3, seed=2), _samples([3, 4, 5]))
    model.loss(_views(3, seed=4), _samples([6, 7, 0]))
    assert int(model.queue.ptr) == 1


def test_mococld_key_view_and_ema_convention():
    model = MoCoCLD(
        backbone=PoolEncoder(),
        neck=_identity_neck(),
        head=dict(type='ContrastiveHead', loss=dict(type='CrossEntropyLoss'),
                  temperature=0.2),
        group_head=None, queue_len=4, feat_dim=3, momentum=0.25,
        key_view=1)
    views = _views(3, seed=5)
    model.loss(views, _samples([0, 1, 2]))
    np.testing.assert_allclose(model.queue.queue.numpy()[:3],
                               _unit(views[1].mean((2, 3)).numpy()),
                               atol=1e-6)
    # EMA: momentum weights the NEW (online) value (MMEngine convention)
    with torch.no_grad():
        model.backbone.scale.fill_(3.)
    model.loss(views, _samples([0, 1, 2]))
    assert model.encoder_k.module[0].scale.item() == pytest.approx(
        0.75 * 1. + 0.25 * 3.)


def test_bad_inputs_name_keys():
    model = _npid()
    x1, x2 = _views(2)
    with pytest.raises(ValueError, match='PackInputs'):
        model.loss([x1, x2], [DataSample() for _ in range(3)])
    with pytest.raises(ValueError, match='num_views'):
        model.loss([x1, x2, x1], _samples([0, 1, 2]))
    with pytest.raises(ValueError, match='model.memory.length'):
        model.loss([x1, x2], _samples([0, 1, 6]))
    with pytest.raises(ValueError, match='model.memory.length'):
        check_memories(model, 7)
    check_memories(model, 6)
    with pytest.raises(ValueError, match='model.temperature'):
        _npid(temperature=0.)
    with pytest.raises(ValueError, match='feat_dim'):
        NPIDCLD(backbone=PoolEncoder(), neck=_identity_neck(),
                memory=dict(type='FeatureMemory', length=4, feat_dim=5))
    with pytest.raises(ValueError, match='with_group'):
        NPIDCLD(backbone=PoolEncoder(), neck=_identity_neck(group=False),
                memory=dict(type='FeatureMemory', length=4, feat_dim=3),
                group_head=dict(type='GroupBranch', num_groups=2))
    moco_kw = dict(
        backbone=PoolEncoder(), neck=_identity_neck(),
        head=dict(type='ContrastiveHead', loss=dict(type='CrossEntropyLoss'),
                  temperature=0.2), queue_len=4, feat_dim=3)
    moco = MoCoCLD(**moco_kw)
    with pytest.raises(ValueError, match='num_views=3'):
        moco.loss([x1, x2], _samples([0, 1, 2]))
    with pytest.raises(ValueError, match='model.momentum'):
        MoCoCLD(**dict(moco_kw, momentum=0.))
    with pytest.raises(ValueError, match='model.key_view'):
        MoCoCLD(**dict(moco_kw, key_view=3))
    with pytest.raises(ValueError, match='model.feat_dim'):
        MoCoCLD(**dict(moco_kw, feat_dim=4))


def test_registered_and_built_from_config(tiny_backbone):
    model = MODELS.build(dict(
        type='NPIDCLD', backbone=tiny_backbone,
        neck=dict(type='CLDNeck', in_channels=32, out_channels=8,
                  proj_type='normed'),
        memory=dict(type='FeatureMemory', length=16, feat_dim=8),
        group_head=dict(type='GroupBranch', num_groups=4)))
    x = [torch.randn(4, 3, 16, 16) for _ in range(2)]
    losses = model.loss(x, _samples(range(4)))
    sum(v for k, v in losses.items() if k.startswith('loss')).backward()
    assert all(torch.isfinite(v) for v in losses.values())
