"""Resume exactness of composed models with a real mmengine Runner and the
inter-image branch's hooks: MoCo (negatives) and BYOL (none), each with the
inter-image, group and mixture branches. A run resumed from iteration 3
logs the same losses and ends with the same weights, optimizer state,
framework state (queue, momentum encoder, target network) and branch state
(memory bank, pseudo-labels, centroids, split counter, sampling step) as the
uninterrupted run; the memory comes from the checkpoint, not from a new
clustering."""
import copy
import os.path as osp

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner

from mmssl_ext.engine.hooks import OfflineClusterHook
from .tiny import PRE, composed, inter_branch

N = 16
DATA = dict(type='SyntheticImageDataset', num_samples=N, num_classes=4,
            img_size=16)


class _PinRNGAndRecord(Hook):
    """Seeds torch's generators from the iteration number before each train
    step (the Runner does not checkpoint RNG states: mixing draws, MoCo's
    batch shuffle), and records the step outputs."""
    priority = 'VERY_HIGH'

    def __init__(self):
        self.logs = []

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        torch.manual_seed(1000 + runner.iter)

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.logs.append({k: float(v.detach()) for k, v in outputs.items()})


def _model(fw):
    branch = inter_branch(memory=dict(
        type='ClusterMemory', length=N, feat_dim=8, num_clusters=3,
        momentum=1.0, min_cluster=2))
    return composed(fw, branch, 'group', 'mixture', base_loss_weight=0.75,
                    data_preprocessor=PRE)


def _runner(work_dir, fw, hook, load_from=None):
    views = [[], [dict(type='RandomFlip', prob=1.0, direction='horizontal')]]
    return Runner(
        model=_model(fw),
        work_dir=work_dir,
        train_dataloader=dict(
            batch_size=4, num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=False),
            collate_fn=dict(type='default_collate'),
            dataset=dict(DATA, pipeline=[
                dict(type='MultiView', num_views=[1, 1], transforms=views),
                dict(type='PackInputs')])),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.05,
                                          momentum=0.9)),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=6),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=3,
                            by_epoch=False),
            logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=[
            dict(type='OfflineClusterHook',
                 extract_dataloader=dict(
                     batch_size=8, num_workers=0,
                     sampler=dict(type='DefaultSampler', shuffle=False),
                     collate_fn=dict(type='default_collate'),
                     dataset=dict(DATA, pipeline=[dict(type='PackInputs')])),
                 clustering=dict(backend='torch')),
            dict(type='ClusterMemoryHook', centroids_update_interval=2,
                 evaluate_interval=2), hook
        ],
        randomness=dict(seed=0, deterministic=True),
        default_scope='mmssl_ext',
        load_from=load_from,
        resume=load_from is not None,
        log_level='WARNING')


@pytest.mark.parametrize('fw', ['MoCo', 'BYOL'])
def test_composed_resume_is_exact(fw, tmp_path):
    try:
        full = _PinRNGAndRecord()
        r1 = _runner(str(tmp_path / 'full'), fw, full)
        r1.train()
        state1 = {k: v.clone() for k, v in r1.model.state_dict().items()}
        opt1 = copy.deepcopy(r1.optim_wrapper.state_dict())
        resumed = _PinRNGAndRecord()
        r2 = _runner(str(tmp_path / 'resumed'), fw, resumed,
                     load_from=osp.join(str(tmp_path / 'full'),
                                        'iter_3.pth'))
        called = []
        offline = [h for h in r2.hooks
                   if isinstance(h, OfflineClusterHook)][0]
        offline.cluster = lambda *a, **k: called.append(1)
        r2.train()
        state2 = r2.model.state_dict()
        opt2 = r2.optim_wrapper.state_dict()
    finally:
        torch.use_deterministic_algorithms(False)
    assert not called  # the memory came from the checkpoint
    assert len(full.logs) == 6 and len(resumed.logs) == 3
    assert full.logs[3:] == resumed.logs
    for key in ('loss_base', 'loss_inter', 'loss_group', 'loss_bsim',
                'change_ratio', 'group_purity'):
        assert key in full.logs[0], key
    assert all(log['loss_inter'] != 0 for log in full.logs)
    assert set(state1) == set(state2)
    for k in state1:
        assert torch.equal(state1[k], state2[k]), k
    assert int(state2['branches.0.sampling_step']) == 6
    bufs1, bufs2 = opt1['state'], opt2['state']
    assert set(bufs1) == set(bufs2) and len(bufs1) > 0
    for i in bufs1:
        assert torch.equal(bufs1[i]['momentum_buffer'],
                           bufs2[i]['momentum_buffer']), i
