"""InterCLR's hooks, composed on a real mmengine Runner (1 process, tiny
model): OfflineClusterHook (initial clustering, offline re-clustering),
ClusterMemoryHook (centroid refresh, small clusters, cluster sizes),
ModelParamScheduleHook (loss-weight warm-up); wrapped model and resume
exactness."""
import logging
import os.path as osp
import tempfile
import uuid

import pytest
import torch
import torch.nn.functional as F
from mmengine.hooks import Hook
from mmengine.logging import MMLogger
from mmengine.model import BaseModel
from mmengine.registry import MODEL_WRAPPERS
from mmengine.runner import Runner

from mmssl_ext.engine.hooks import OfflineClusterHook
from mmssl_ext.registry import HOOKS

CE = dict(type='CrossEntropyLoss')
N = 16
DATA = dict(type='SyntheticImageDataset', num_samples=N, num_classes=4,
            img_size=16)


def _model_cfg(**kw):
    cfg = dict(
        type='InterCLRMoCo',
        data_preprocessor=dict(type='SelfSupDataPreprocessor',
                               mean=[127.5] * 3, std=[127.5] * 3,
                               to_rgb=False),
        backbone=dict(type='ResNet_CIFAR', depth=18, stem_channels=4,
                      base_channels=4, norm_cfg=dict(type='BN')),
        neck=dict(type='MoCoV2Neck', in_channels=32, hid_channels=16,
                  out_channels=8, with_avg_pool=True),
        head=dict(type='MarginContrastiveHead', loss=CE, temperature=0.2),
        memory=dict(type='ClusterMemory', length=N, num_clusters=4,
                    momentum=1.0, min_cluster=2),
        queue_len=12,  # not a multiple of the batch: wrap-around
        feat_dim=8,
        momentum=0.01,
        neg_num=4,
        semihard_neg_pool_num=8,
        semieasy_neg_pool_num=8,
        sampling_seed=0)
    cfg.update(kw)
    return cfg


def _offline_cfg(**kw):
    cfg = dict(
        type='OfflineClusterHook',
        extract_dataloader=dict(
            batch_size=8, num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=False),
            collate_fn=dict(type='default_collate'),
            dataset=dict(DATA, pipeline=[dict(type='PackInputs')])),
        clustering=dict(backend='torch'))
    cfg.update(kw)
    return cfg


def _hooks(warmup_epochs=0, **kw):
    """InterCLR's online-label hooks (and the warm-up)."""
    hooks = [_offline_cfg(**kw),
             dict(type='ClusterMemoryHook', centroids_update_interval=2,
                  evaluate_interval=2)]
    if warmup_epochs:
        hooks.append(dict(type='ModelParamScheduleHook', end=warmup_epochs,
                          params=dict(loss_intra=1., loss_inter=0.)))
    return hooks


def _offline(runner):
    return [h for h in runner.hooks if isinstance(h, OfflineClusterHook)][0]


class Recorder(Hook):
    priority = 'LOWEST'

    def __init__(self):
        self.logs, self.weights, self.min_sizes = [], [], []

    def before_train_epoch(self, runner):
        from mmpretrain.utils import get_ori_model
        m = get_ori_model(runner.model)
        w = m.loss_weights()
        self.weights.append((w['loss_intra'], w['loss_inter']))

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        from mmpretrain.utils import get_ori_model
        self.logs.append({k: float(v.detach()) if torch.is_tensor(v) else
                          float(v) for k, v in outputs.items()})
        m = get_ori_model(runner.model)
        self.min_sizes.append(int(m.branches[0].memory.histogram().min()))


@MODEL_WRAPPERS.register_module(force=True)
class ToyWrapper(BaseModel):
    """A non-DDP model wrapper: the hook must not assume `.module` only
    exists under DDP, nor that the runner's model is the algorithm."""

    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def train_step(self, data, optim_wrapper):
        return self.module.train_step(data, optim_wrapper)

    def val_step(self, data):
        return self.module.val_step(data)

    def test_step(self, data):
        return self.module.test_step(data)


def _runner(work_dir, model=None, hooks=(), train_cfg=None, resume=False,
            load_from=None, ckpt_interval=3):
    rec = Recorder()
    runner = Runner(
        model=model if model is not None else _model_cfg(),
        work_dir=work_dir,
        experiment_name=f'interclr-{uuid.uuid4().hex}',
        train_dataloader=dict(
            batch_size=4, num_workers=0, drop_last=True,
            sampler=dict(type='DefaultSampler', shuffle=True),
            collate_fn=dict(type='default_collate'),
            dataset=dict(DATA, pipeline=[
                dict(type='MultiView', num_views=2, transforms=[[]]),
                dict(type='PackInputs')])),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.05,
                                          momentum=0.9)),
        train_cfg=train_cfg or dict(by_epoch=True, max_epochs=2),
        custom_hooks=list(hooks) + [rec],  # rec is LOWEST: runs last
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=1),
            checkpoint=dict(type='CheckpointHook', interval=ckpt_interval,
                            by_epoch=False)),
        randomness=dict(seed=0, deterministic=True),
        default_scope='mmssl_ext',
        resume=resume,
        load_from=load_from)
    return runner, rec


@pytest.fixture
def tmp():
    with tempfile.TemporaryDirectory() as d:
        yield d
    logging.shutdown()
    MMLogger._instance_dict.clear()


def _cluster_means(m):
    out = m.branches[0].memory.centroids.clone()
    for c in range(m.branches[0].memory.num_clusters):
        sel = m.branches[0].memory.label_bank == c
        if sel.any():
            out[c] = m.branches[0].memory.bank[sel].mean(0)
    return out


def test_hook_trains_with_warmup_and_label_maintenance(tmp):
    runner, rec = _runner(tmp, hooks=_hooks(warmup_epochs=1))
    m = runner.model
    calls = dict(centroids=0, small=0)
    mem = m.branches[0].memory
    orig_c, orig_s = mem.update_centroids, mem.deal_with_small_clusters

    def count_c(*cinds):  # the small-cluster pass refreshes some rows
        calls['centroids'] += not cinds
        return orig_c(*cinds)

    def count_s():
        calls['small'] += 1
        return orig_s()

    mem.update_centroids, mem.deal_with_small_clusters = count_c, count_s
    runner.train()
    # 8 iterations: centroids every 2 (+1: the initial clustering), small
    # clusters every iteration
    assert calls == dict(centroids=1 + 4, small=8)
    assert bool(mem.initialized)
    # warm-up epoch: inter loss off, then the configured weights
    assert rec.weights == [(1., 0.), (0.75, 0.25)]
    assert all(log['loss_inter'] == 0. for log in rec.logs[:4])
    assert all(log['loss_inter'] > 0. for log in rec.logs[4:])
    assert set(rec.logs[-1]) == {'loss', 'loss_intra', 'loss_inter',
                                 'change_ratio', 'neg_widened'}
    # cluster sizes are logged once, by ClusterMemoryHook (every 2 iters)
    hub, hist = runner.message_hub, mem.histogram()
    assert hub.get_scalar('train/clusters_min').current() == int(hist.min())
    assert hub.get_scalar('train/clusters_max').current() == int(hist.max())
    assert hub.get_scalar('train/clusters_empty').current() == int(
        (hist == 0).sum())
    # no cluster is left empty after the small-cluster pass
    assert min(rec.min_sizes) >= 1
    # centroids refreshed (last iteration 8 is a multiple of 2): the means
    assert torch.allclose(m.branches[0].memory.centroids, _cluster_means(m), atol=1e-5)
    assert int(m.queue.ptr) == (8 * 4) % 12


def test_initial_clustering_matches_kmeans_of_extracted_features(tmp):
    from mmssl_ext.models.utils.kmeans import kmeans
    from mmssl_ext.utils.extract import extract_features
    runner, _ = _runner(tmp, hooks=_hooks(),
                        train_cfg=dict(by_epoch=True, max_epochs=1))
    hook = _offline(runner)
    model = runner.model
    assert not bool(model.branches[0].memory.initialized)
    feats = extract_features(
        model, hook._dataloader(runner),
        feature=lambda m, x: model.clustering_feature(x), progress=False)
    labels = hook.cluster(runner)
    expect = kmeans(feats, 4, num_iters=20, normalize=True, backend='torch',
                    seed=0).labels
    assert torch.equal(labels, expect)
    assert torch.allclose(model.branches[0].memory.bank, F.normalize(feats, dim=1),
                          atol=1e-6)
    assert torch.equal(model.branches[0].memory.label_bank, expect)


def test_offline_labels_recluster_every_interval(tmp):
    memory = dict(type='ClusterMemory', length=N, num_clusters=4,
                  momentum=1.0, min_cluster=2, online_labels=False)
    runner, rec = _runner(
        tmp, model=_model_cfg(memory=memory),
        hooks=[_offline_cfg(interval=1)])
    calls = []
    hook = _offline(runner)
    orig = hook.cluster
    model_ref = runner.model

    def spy(r):
        calls.append(bool(model_ref.branches[0].memory.initialized))
        return orig(r)

    hook.cluster = spy
    runner.train()
    # initial (memory empty) + after each epoch (labels only)
    assert calls == [False, True, True]
    assert 'change_ratio' not in rec.logs[-1]


def test_hook_with_wrapped_model(tmp):
    from mmssl_ext.registry import MODELS
    torch.manual_seed(0)
    model = ToyWrapper(MODELS.build(_model_cfg()))
    runner, rec = _runner(tmp, model=model, hooks=_hooks())
    runner.train()
    assert bool(model.module.branches[0].memory.initialized) and len(rec.logs) == 8


def test_hook_config_errors(tmp):
    with pytest.raises(ValueError, match='centroids_update_interval'):
        HOOKS.build(dict(type='ClusterMemoryHook',
                         centroids_update_interval=0))
    with pytest.raises(ValueError, match='clustering.k'):
        HOOKS.build(_offline_cfg(clustering=dict(k=3)))
    with pytest.raises(ValueError, match='interval=0'):
        HOOKS.build(_offline_cfg(interval=0))
    # ClusterMemoryHook has nothing to maintain with offline labels
    memory = dict(type='ClusterMemory', length=N, num_clusters=4,
                  online_labels=False)
    runner, _ = _runner(tmp, model=_model_cfg(memory=memory),
                        hooks=_hooks())
    with pytest.raises(TypeError, match='online_labels=True'):
        runner.train()


def test_memory_length_mismatch_is_caught(tmp):
    runner, _ = _runner(tmp, model=_model_cfg(memory=dict(
        type='ClusterMemory', length=N + 1, num_clusters=4, momentum=1.0,
        min_cluster=2)), hooks=_hooks())
    with pytest.raises(ValueError, match=r'model.branches.0.memory.length'):
        runner.train()


def _state(model):
    sd = model.state_dict()
    keys = ('branches.0.memory.bank', 'branches.0.memory.label_bank',
            'branches.0.memory.centroids', 'branches.0.memory.num_splits',
            'queue.queue', 'queue.ptr', 'branches.0.sampling_step',
            'backbone.conv1.weight')
    return {k: sd[k].clone() for k in keys}


def test_resume_is_exact(tmp):
    iters = dict(type='IterBasedTrainLoop', max_iters=6)
    a_dir, b_dir = osp.join(tmp, 'a'), osp.join(tmp, 'b')
    ra, rec_a = _runner(a_dir, hooks=_hooks(), train_cfg=iters)
    ra.train()
    state_a = _state(ra.model)
    ckpt = osp.join(a_dir, 'iter_3.pth')
    assert osp.exists(ckpt)

    rb, rec_b = _runner(b_dir, hooks=_hooks(), train_cfg=iters,
                        resume=True, load_from=ckpt)
    called = []
    hook = _offline(rb)
    hook.cluster = lambda *a, **k: called.append(1)
    rb.train()
    assert not called  # memory came from the checkpoint
    assert len(rec_b.logs) == 3
    for la, lb in zip(rec_a.logs[3:], rec_b.logs):
        for key in ('loss_intra', 'loss_inter', 'change_ratio'):
            assert lb[key] == pytest.approx(la[key], rel=1e-5, abs=1e-6), key
    state_b = _state(rb.model)
    for key, va in state_a.items():
        if va.is_floating_point():
            assert torch.allclose(state_b[key], va, atol=1e-5), key
        else:
            assert torch.equal(state_b[key], va), key


def test_param_schedule_restores_the_configured_values(tmp):
    hook = HOOKS.build(dict(type='ModelParamScheduleHook', begin=1, end=2,
                            params=dict(loss_inter=0.)))
    runner, rec = _runner(tmp, hooks=_hooks() + [hook],
                          train_cfg=dict(by_epoch=True, max_epochs=3))
    runner.train()
    assert rec.weights == [(0.75, 0.25), (0.75, 0.), (0.75, 0.25)]


@pytest.mark.parametrize('kw,match', [
    (dict(params=dict(loss_inter=0.), end=0), 'begin < end'),
    (dict(params=dict(loss_inter='x'), end=1), 'must be a number'),
    (dict(params={}, end=1), 'non-empty'),
])
def test_param_schedule_config_errors(kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        HOOKS.build(dict(type='ModelParamScheduleHook', **kw))


def test_param_schedule_names_a_missing_attribute(tmp):
    hook = dict(type='ModelParamScheduleHook', end=1,
                params=dict(loss_intre=0.))
    runner, _ = _runner(tmp, hooks=_hooks() + [hook])
    with pytest.raises(TypeError, match="'loss_intre'"):
        runner.train()
