"""InterCLRMoCo: loss terms against hand computations, memory/queue
updates, options and configuration errors; every config of
configs/interclr builds."""
import copy
import glob
import math
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmpretrain.structures import DataSample

from mmssl_ext.models.memories import check_memories
from mmssl_ext.registry import MODELS

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..', '..'))
CE = dict(type='CrossEntropyLoss')
TINY = dict(type='ResNet_CIFAR', depth=18, stem_channels=4, base_channels=4,
            norm_cfg=dict(type='BN'), zero_init_residual=False)


def _cfg(length=32, num_clusters=4, **kw):
    cfg = dict(
        type='InterCLRMoCo',
        backbone=TINY,
        neck=dict(type='MoCoV2Neck', in_channels=32, hid_channels=16,
                  out_channels=8, with_avg_pool=True),
        head=dict(type='MarginContrastiveHead', loss=CE, temperature=0.2),
        memory=dict(type='ClusterMemory', length=length,
                    num_clusters=num_clusters, momentum=1.0, min_cluster=2),
        queue_len=16,
        feat_dim=8,
        momentum=0.01,
        neg_num=6,
        semihard_neg_pool_num=12,
        semieasy_neg_pool_num=12,
        sampling_seed=0)
    cfg.update(kw)
    return cfg


def _build(feats_seed=0, labels=None, **kw):
    torch.manual_seed(0)
    model = MODELS.build(_cfg(**kw))
    n = model.branches[0].memory.length
    g = torch.Generator().manual_seed(feats_seed)
    feats = torch.randn(n, 8, generator=g)
    if labels is None:
        labels = torch.arange(n) % model.branches[0].memory.num_clusters
    model.branches[0].memory.init_memory(feats, torch.as_tensor(labels))
    model.train()
    return model


def _batch(idx, seed=1, size=16):
    g = torch.Generator().manual_seed(seed)
    b = len(idx)
    x1 = torch.randn(b, 3, size, size, generator=g)
    x2 = torch.randn(b, 3, size, size, generator=g)
    samples = [DataSample(metainfo=dict(sample_idx=int(i))) for i in idx]
    return [x1, x2], samples


def _ce0(logits):
    return -logits[0] + math.log(sum(math.exp(v) for v in logits))


def test_loss_keys_finite_backward_and_state_moves():
    model = _build()
    inputs, samples = _batch([0, 5, 9, 30])
    losses = model.loss(inputs, samples)
    assert set(losses) == {'loss_intra', 'loss_inter', 'change_ratio',
                           'neg_widened'}
    for key in ('loss_intra', 'loss_inter', 'change_ratio'):
        assert key in losses and torch.isfinite(losses[key]).all(), key
    assert not losses['change_ratio'].requires_grad
    (losses['loss_intra'] + losses['loss_inter']).backward()
    grad = model.backbone.conv1.weight.grad
    assert grad is not None and grad.abs().sum() > 0
    assert int(model.queue.ptr) == 4
    assert int(model.branches[0].sampling_step) == 1
    # tensor mode still returns backbone features
    out = model(inputs[0], mode='tensor')
    assert out[-1].shape[:2] == (4, 32)


def test_losses_match_hand_computation():
    # 6 samples, labels [0, 1, 2, 2, 2, 2]: anchors 0 and 1 are alone in
    # their clusters, so the positive is their own entry; 'hard' sampling
    # with neg_num=5 takes every other entry: the inter loss is fully
    # determined and computed here by hand.
    model = _build(length=6, num_clusters=3, labels=[0, 1, 2, 2, 2, 2],
                   neg_sampling='hard', neg_num=5)
    inputs, samples = _batch([0, 1])
    with torch.no_grad():
        q = F.normalize(model.neck(model.backbone(inputs[0]))[0], dim=1)
        k = F.normalize(model.neck(model.backbone(inputs[1]))[0], dim=1)
    queue = model.queue.queue.clone()
    bank = model.branches[0].memory.bank.clone()
    losses = model.loss(inputs, samples)

    intra, inter = [], []
    for i in range(2):
        logits = [float(q[i] @ k[i]) / 0.2]
        logits += [float(q[i] @ queue[j]) / 0.2 for j in range(16)]
        intra.append(_ce0(logits))
        logits = [(float(q[i] @ bank[i]) + 0.5) / 0.2]  # cos margin -0.5
        logits += [float(q[i] @ bank[j]) / 0.2 for j in range(6) if j != i]
        inter.append(_ce0(logits))
    assert losses['loss_intra'].item() == pytest.approx(
        0.75 * sum(intra) / 2, rel=1e-4)
    assert losses['loss_inter'].item() == pytest.approx(
        0.25 * sum(inter) / 2, rel=1e-4)


def test_inter_logits_are_dot_products_with_sampled_entries():
    model = _build()
    q = F.normalize(torch.randn(3, 8), dim=1)
    idx = torch.tensor([1, 2, 3])
    pos, neg, pidx, nidx = model.branches[0].inter_logits(
        q, idx, torch.Generator().manual_seed(0))
    lb, bank = model.branches[0].memory.label_bank, model.branches[0].memory.bank
    assert (lb[pidx] == lb[idx]).all()
    assert (lb[nidx] != lb[idx].view(-1, 1)).all()
    for i in range(3):
        assert pos[i, 0].item() == pytest.approx(
            float(q[i] @ bank[pidx[i]]), abs=1e-6)
        for j in range(nidx.size(1)):
            assert neg[i, j].item() == pytest.approx(
                float(q[i] @ bank[nidx[i, j]]), abs=1e-6)


def test_online_relabel_and_replace_update_by_hand():
    model = _build()
    idx = [0, 5, 9, 30]
    inputs, samples = _batch(idx)
    with torch.no_grad():
        k = F.normalize(model.neck(model.backbone(inputs[1]))[0], dim=1)
    centroids = model.branches[0].memory.centroids.clone()
    old = model.branches[0].memory.label_bank[idx].clone()
    losses = model.loss(inputs, samples)
    # mu = 1.0: the entry is replaced by the momentum-encoder key
    assert torch.allclose(model.branches[0].memory.bank[idx], k, atol=1e-5)
    expect = torch.tensor([
        max(range(4), key=lambda c: float(centroids[c] @ k[i]))
        for i in range(4)
    ])
    assert torch.equal(model.branches[0].memory.label_bank[idx], expect)
    assert losses['change_ratio'].item() == pytest.approx(
        float((expect != old).float().mean()))


def test_offline_labels_momentum_update_without_relabel():
    model = _build(memory=dict(type='ClusterMemory', length=32,
                               num_clusters=4, momentum=0.5, min_cluster=2,
                               online_labels=False))
    idx = [3, 4]
    inputs, samples = _batch(idx)
    with torch.no_grad():
        k = F.normalize(model.neck(model.backbone(inputs[1]))[0], dim=1)
    old_bank = model.branches[0].memory.bank[idx].clone()
    old_labels = model.branches[0].memory.label_bank.clone()
    losses = model.loss(inputs, samples)
    assert 'change_ratio' not in losses
    assert torch.equal(model.branches[0].memory.label_bank, old_labels)
    expect = F.normalize(0.5 * old_bank + 0.5 * k, dim=1)
    assert torch.allclose(model.branches[0].memory.bank[idx], expect, atol=1e-5)
    # offline labels are replaced wholesale by the clustering hook
    new = torch.arange(32).flip(0) % 4
    model.branches[0].memory.set_clusters(None, new)
    assert torch.equal(model.branches[0].memory.label_bank, new)


def test_loss_weights_scale_terms():
    model = _build()
    other = copy.deepcopy(model)
    other.set_loss_weight('loss_intra', 1.)
    other.set_loss_weight('loss_inter', 1.)
    inputs, samples = _batch([0, 5, 9, 30])
    a = model.loss(inputs, samples)
    b = other.loss(inputs, samples)
    assert a['loss_intra'].item() == pytest.approx(
        0.75 * b['loss_intra'].item(), rel=1e-4)
    assert a['loss_inter'].item() == pytest.approx(
        0.25 * b['loss_inter'].item(), rel=1e-4)
    other.set_loss_weight('loss_inter', 0.)  # warm-up
    c = other.loss(inputs, samples)
    assert c['loss_inter'].item() == 0.


@pytest.mark.parametrize('strategy', ['random', 'hard', 'semihard',
                                      'semieasy'])
def test_every_sampling_strategy_trains(strategy):
    model = _build(neg_sampling=strategy)
    inputs, samples = _batch([1, 2, 3, 4])
    losses = model.loss(inputs, samples)
    (losses['loss_intra'] + losses['loss_inter']).backward()
    assert torch.isfinite(losses['loss_inter'])


def test_arc_margin_and_intra_margin_options():
    model = _build(
        head=dict(type='MarginContrastiveHead', loss=CE, temperature=0.2,
                  cos_margin=0.1),
        inter_head=dict(type='MarginContrastiveHead', loss=CE,
                        temperature=0.2, cos_margin=None, arc_margin=0.3))
    assert model.head.cos_margin == 0.1
    assert model.branches[0].head.arc_margin == 0.3
    inputs, samples = _batch([1, 2])
    assert torch.isfinite(model.loss(inputs, samples)['loss_inter'])


def test_separate_inter_neck():
    model = _build(share_neck=False)
    branch = model.branches[0]
    assert branch.neck is not None and branch.neck_k is not None
    inputs, samples = _batch([6, 7])
    losses = model.loss(inputs, samples)
    losses['loss_inter'].backward()
    assert branch.neck.mlp[0].weight.grad.abs().sum() > 0
    assert model.neck.mlp[0].weight.grad is None
    with torch.no_grad():
        k2 = F.normalize(branch.neck(model.backbone(inputs[1]))[0], dim=1)
    assert torch.allclose(model.branches[0].memory.bank[[6, 7]], k2, atol=1e-5)


def test_state_dict_holds_all_state():
    model = _build()
    keys = model.state_dict().keys()
    for k in ('queue.queue', 'queue.ptr', 'branches.0.memory.bank',
              'branches.0.memory.label_bank', 'branches.0.memory.centroids',
              'branches.0.memory.initialized', 'branches.0.sampling_seed',
              'branches.0.sampling_step'):
        assert k in keys, k
    assert 'queue' not in keys and 'queue_ptr' not in keys


# ----------------------------------------------------------- bad input
def test_missing_sample_idx():
    model = _build()
    inputs, _ = _batch([0, 1])
    with pytest.raises(ValueError, match='sample_idx'):
        model.loss(inputs, [DataSample(), DataSample()])


def test_memory_not_initialised():
    model = MODELS.build(_cfg())
    inputs, samples = _batch([0, 1])
    with pytest.raises(RuntimeError, match='OfflineClusterHook'):
        model.loss(inputs, samples)


@pytest.mark.parametrize('kw,key', [
    (dict(head=dict(type='MarginContrastiveHead', loss=CE,
                    temperature=0.)), 'temperature'),
    (dict(head=dict(type='ContrastiveHead', loss=CE, temperature=-1.)),
     'temperature'),
    (dict(inter_head=dict(type='MarginContrastiveHead', loss=CE,
                          temperature=-0.1)), 'temperature'),
    (dict(neg_sampling='easy'), 'neg_sampling'),
    (dict(num_clusters=64), 'num_clusters'),
    (dict(semihard_neg_pool_num=64), 'semihard_neg_pool_num'),
    (dict(neg_num=40), 'neg_num'),
    (dict(momentum=0.999 + 1), 'momentum'),
])
def test_bad_config_errors_name_the_key(kw, key):
    with pytest.raises(ValueError, match=key):
        MODELS.build(_cfg(**kw))


def test_dataset_length_checks():
    model = MODELS.build(_cfg())
    check_memories(model, 32)
    with pytest.raises(ValueError, match=r'model.branches.0.memory.length'):
        check_memories(model, 31)


# -------------------------------------------------------------- configs
CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs', 'interclr', '*.py')))


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config_builds(path):
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmssl_ext'
    assert cfg.model.type == 'InterCLRMoCo'
    assert [h['type'] for h in cfg.custom_hooks] == [
        'OfflineClusterHook', 'ClusterMemoryHook']
    from mmssl_ext.registry import HOOKS
    for h in cfg.custom_hooks:
        HOOKS.build(copy.deepcopy(h))
    assert cfg.custom_hooks[0].interval is None  # online labels
    model = MODELS.build(cfg.model)
    assert model.branches[0].memory.length == cfg.model.memory.length
    del model


def test_in1k_recipe_is_the_papers():
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'interclr_r50.py'))
    # the entry point is a thin config over the in1k recipe (built above)
    base = Config.fromfile(osp.join(
        ROOT, 'configs', 'interclr',
        'interclr-moco_resnet50_8xb32-coslr-200e_in1k.py'))
    assert cfg.model == base.model
    assert cfg.custom_hooks == base.custom_hooks
    m = cfg.model
    assert (m.queue_len, m.feat_dim, m.momentum) == (65536, 128, 0.001)
    assert (m.memory.length, m.memory.num_clusters, m.memory.momentum,
            m.memory.min_cluster) == (1281167, 10000, 1.0, 20)
    assert (m.neg_sampling, m.neg_num, m.semihard_neg_pool_num) == (
        'semihard', 16384, 128000)
    assert m.inter_head.cos_margin == -0.5 and m.head.cos_margin is None
    assert (m.intra_loss_weight, m.inter_loss_weight) == (0.75, 0.25)
    assert m.head.temperature == 0.2 and m.share_neck
    assert cfg.train_dataloader.batch_size == 32
    assert cfg.optim_wrapper.optimizer.lr == 0.03
    assert cfg.train_cfg.max_epochs == 200
    h = cfg.custom_hooks[1]
    assert (h.centroids_update_interval, h.deal_with_small_clusters_interval,
            h.evaluate_interval) == (10, 1, 50)
    assert m.memory.online_labels


def test_ablation_switches_via_cfg_options():
    path = osp.join(ROOT, 'configs', 'interclr',
                    'interclr-moco_resnet18-cifar_1xb64-coslr-20e_digits.py')
    cfg = Config.fromfile(path)
    cfg.merge_from_dict({
        'model.neg_sampling': 'hard',
        'model.memory.online_labels': False,
        'model.inter_head.cos_margin': None,
        'model.inter_head.arc_margin': 0.5,
        'model.share_neck': False,
    })
    model = MODELS.build(cfg.model)
    branch = model.branches[0]
    assert type(branch.neg_sampler).__name__ == 'HardNegativeSampler'
    assert not model.branches[0].memory.online_labels and branch.neck is not None
    assert branch.head.cos_margin is None
    assert branch.head.arc_margin == 0.5
