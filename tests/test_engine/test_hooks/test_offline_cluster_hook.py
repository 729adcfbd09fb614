"""OfflineClusterHook + ClusterMemoryHook with a real Runner (1 process and
2 gloo processes), and exact resume of ODC / DeepCluster / NPID."""
import copy
import logging
import os.path as osp

import pytest
import torch
from mmengine.logging import MMLogger
from mmengine.runner import Runner

from mmssl_testing import (TINY_BACKBONE, TINY_PREPROCESSOR, dataloader,
                               run_in_processes, runner_cfg,
                               synthetic_dataset)

N, K, D = 16, 3, 8

ODC = dict(
    type='ODC', data_preprocessor=TINY_PREPROCESSOR, backbone=TINY_BACKBONE,
    neck=dict(type='ODCNeck', in_channels=32, hid_channels=16,
              out_channels=D, dropout=0.),
    head=dict(type='LinearClsHead', num_classes=K, in_channels=D),
    memory=dict(type='ClusterMemory', length=N, feat_dim=D, num_clusters=K,
                momentum=0.5, min_cluster=3, init='data'))
DEEPCLUSTER = dict(
    type='DeepCluster', with_sobel=True,
    memory=dict(type='LabelMemory', length=N, num_clusters=K),
    data_preprocessor=TINY_PREPROCESSOR,
    backbone=dict(TINY_BACKBONE, in_channels=2),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=K, in_channels=32))
NPID = dict(
    type='NPID', neg_num=6, data_preprocessor=TINY_PREPROCESSOR,
    backbone=TINY_BACKBONE,
    neck=dict(type='LinearNeck', in_channels=32, out_channels=D, gap_dim=2),
    head=dict(type='ContrastiveHead', loss=dict(type='CrossEntropyLoss'),
              temperature=0.07),
    memory=dict(type='FeatureMemory', length=N, feat_dim=D))


def _extract(n=N):
    return dataloader(synthetic_dataset(n), batch_size=5, round_up=False)


def _offline(**kw):
    cfg = dict(type='OfflineClusterHook', extract_dataloader=_extract(),
               clustering=dict(backend='torch', init='k-means++'),
               progress=False)
    cfg.update(kw)
    return cfg


ODC_HOOKS = [
    _offline(),
    dict(type='ClusterMemoryHook', centroids_update_interval=2,
         deal_with_small_clusters_interval=1, evaluate_interval=2),
]
DC_HOOKS = [_offline(interval=1, reset_head=True)]


@pytest.fixture(autouse=True)
def _clean_loggers():
    yield
    logging.shutdown()
    MMLogger._instance_dict.clear()


def _train(model, work_dir, hooks, epochs=2, **kw):
    cfg = runner_cfg(model, work_dir, max_epochs=epochs,
                     custom_hooks=hooks, **kw)
    runner = Runner(**cfg)
    runner.train()
    return runner


def test_odc_initial_clustering_and_online_maintenance(tmp_path):
    runner = _train(ODC, str(tmp_path), ODC_HOOKS, epochs=1)
    model = runner.model
    mem = model.memory
    assert bool(mem.initialized)
    hist = mem.histogram()
    assert int(hist.sum()) == N
    # centroids = means of the members' bank rows (ClusterMemoryHook ran
    # update_centroids at iteration 2 and 4; labels changed since by
    # relabelling, so recompute only for a fresh refresh)
    mem.update_centroids()
    for c in range(K):
        members = mem.label_bank == c
        if members.any():
            torch.testing.assert_close(mem.centroids[c],
                                       mem.bank[members].mean(0))
    # re-weighting from the label histogram
    w = (1. / (hist.double() + 1e-10))**0.5
    torch.testing.assert_close(model.class_weights(), (w / w.sum()).float())
    hub = runner.message_hub
    assert hub.get_scalar('train/clusters_max').current() >= 1
    assert 'change_ratio' in hub.log_scalars or any(
        'change_ratio' in k for k in hub.log_scalars)


def test_initial_clustering_skipped_when_model_has_clusters(tmp_path):
    from mmssl_ext.registry import MODELS
    model = MODELS.build(DEEPCLUSTER)
    labels = torch.arange(N) % K
    model.memory.set_clusters(None, labels)
    calls = []
    from mmssl_ext.engine.hooks import OfflineClusterHook
    orig = OfflineClusterHook.cluster
    OfflineClusterHook.cluster = lambda self, r: calls.append(1)
    try:
        cfg = runner_cfg(model, str(tmp_path), max_epochs=1,
                         custom_hooks=[_offline()])
        cfg['model'] = model
        Runner(**cfg).train()
    finally:
        OfflineClusterHook.cluster = orig
    assert calls == []  # interval=None: initial only, and skipped


def test_hook_errors(tmp_path):
    # extraction set != training set
    with pytest.raises(ValueError, match='extract_dataloader has 12'):
        _train(DEEPCLUSTER, str(tmp_path / 'a'),
               [_offline(extract_dataloader=_extract(12))], epochs=1)
    # memory length != training set
    bad = copy.deepcopy(ODC)
    bad['memory']['length'] = 20
    with pytest.raises(ValueError, match='model.memory.length=20'):
        _train(bad, str(tmp_path / 'b'), ODC_HOOKS, epochs=1)
    with pytest.raises(ValueError, match='clustering.k is not'):
        _offline(clustering=dict(k=3))['type'] and Runner(**runner_cfg(
            DEEPCLUSTER, str(tmp_path / 'c'),
            custom_hooks=[_offline(clustering=dict(k=3))])).train()


def test_npid_memory_has_no_cluster_api(tmp_path):
    with pytest.raises(TypeError, match='needs exactly one pseudo-label'):
        _train(NPID, str(tmp_path), [_offline()], epochs=1)
    with pytest.raises(TypeError, match='holds no ClusterMemory'):
        _train(NPID, str(tmp_path / 'b'), [dict(type='ClusterMemoryHook')],
               epochs=1)


# ------------------------------------------------------------------ resume
def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize('name,model,hooks', [
    ('odc', ODC, ODC_HOOKS), ('deepcluster', DEEPCLUSTER, DC_HOOKS),
    ('npid', NPID, [])
])
def test_resume_is_exact(tmp_path, name, model, hooks):
    from mmengine.hooks import Hook

    class CountIters(Hook):
        def __init__(self):
            self.n = 0

        def after_train_iter(self, *args, **kwargs):
            self.n += 1

    full_count, resumed_count = CountIters(), CountIters()
    full = _train(model, str(tmp_path / 'full'), hooks + [full_count],
                  epochs=2)
    ref = _state(full.model)
    ckpt = osp.join(str(tmp_path / 'full'), 'epoch_1.pth')
    resumed = _train(model, str(tmp_path / 'resumed'),
                     hooks + [resumed_count], epochs=2, load_from=ckpt,
                     resume=True)
    # the resumed run really started at epoch 1 (one epoch of 4 iterations)
    def count(runner):
        return [h.n for h in runner.hooks if isinstance(h, CountIters)][0]

    assert (count(full), count(resumed)) == (8, 4)
    got = _state(resumed.model)
    assert set(got) == set(ref)
    for k in ref:
        assert torch.equal(got[k], ref[k]), f'{name}: {k} differs'


# ------------------------------------------------------------- 2 processes
def _ddp_run(rank, world, work_dir, model, hooks, epochs):
    import mmssl_ext  # noqa: F401
    from mmengine.registry import DefaultScope
    DefaultScope.get_instance(f'ddp-{rank}', scope_name='mmssl_ext')
    cfg = runner_cfg(
        model, f'{work_dir}', max_epochs=epochs, custom_hooks=hooks,
        launcher='pytorch' if world > 1 else 'none',
        model_wrapper_cfg=dict(type='MMDistributedDataParallel',
                               device_ids=None, broadcast_buffers=False))
    from mmengine.config import Config
    runner = Runner.from_cfg(Config(cfg))
    runner.train()  # max_epochs=0: only the initial clustering runs
    from mmpretrain.utils import get_ori_model
    return _state(get_ori_model(runner.model))


@pytest.mark.parametrize('model,hooks,keys', [
    (DEEPCLUSTER, DC_HOOKS, ['memory.labels']),
    (ODC, ODC_HOOKS, ['memory.label_bank', 'memory.bank',
                      'memory.centroids']),
])
def test_two_processes_match_one(tmp_path, model, hooks, keys):
    # initial clustering only (no training step): 2 ranks == 1 process
    s0, s1 = run_in_processes(
        _ddp_run, 2, args=(str(tmp_path / 'ddp'), model, hooks, 0),
        timeout=300)
    single = _ddp_run(0, 1, str(tmp_path / 'one'), model, hooks, 0)
    for k in keys:
        assert torch.equal(s0[k], s1[k]), k  # replicas: bitwise equal
        # vs 1 process: the per-rank extraction batches differ, so conv
        # arithmetic differs in the last bits; labels must agree exactly
        if s0[k].dtype == torch.long:
            assert torch.equal(s0[k], single[k]), k
        else:
            torch.testing.assert_close(s0[k], single[k], atol=1e-5,
                                       rtol=1e-5)


def test_two_processes_training_keeps_replicas_identical(tmp_path):
    s0, s1 = run_in_processes(
        _ddp_run, 2, args=(str(tmp_path / 'ddp'), ODC, ODC_HOOKS, 1),
        timeout=300)
    checked = 0
    for k in s0:
        if 'running_' in k or 'num_batches_tracked' in k:
            continue  # plain BN statistics are per rank (no SyncBN here)
        assert torch.equal(s0[k], s1[k]), k
        checked += 1
    assert {'memory.bank', 'memory.label_bank', 'memory.centroids',
            'memory.num_splits'} <= set(s0) and checked > 10
