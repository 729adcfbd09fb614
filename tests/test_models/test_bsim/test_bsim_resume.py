"""Resume exactness of every BSIM variant with a real mmengine Runner: a run
resumed from iteration 2 continues with the same weights, optimizer state,
method state (MoCo's queue and pointer and momentum encoder, BYOL's target
network) and losses as the uninterrupted run."""
import os.path as osp

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner

BACKBONE = dict(type='ResNet_CIFAR', depth=18, stem_channels=4,
                base_channels=4, norm_cfg=dict(type='BN'))


class _PinRNGAndRecord(Hook):
    """Seeds torch's generators from the iteration number before each train
    step (so both runs draw the same mixtures and MoCo batch shuffles: the
    Runner does not checkpoint RNG states), and records the step outputs."""
    priority = 'VERY_HIGH'

    def __init__(self):
        self.logs = []

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        torch.manual_seed(1000 + runner.iter)

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.logs.append(
            {k: float(v.detach()) for k, v in outputs.items()})


PRE = dict(type='SelfSupDataPreprocessor', mean=[127.5] * 3,
           std=[127.5] * 3, to_rgb=False)
CONTRAST = dict(type='ContrastiveHead', loss=dict(type='CrossEntropyLoss'),
                temperature=0.2)
LATENT = dict(type='NonLinearNeck', in_channels=32, hid_channels=16,
              out_channels=8, num_layers=2, with_bias=True,
              with_last_bn=False, with_avg_pool=True)
PREDICT = dict(type='LatentPredictHead',
               loss=dict(type='CosineSimilarityLoss'),
               predictor=dict(type='NonLinearNeck', in_channels=8,
                              hid_channels=16, out_channels=8, num_layers=2,
                              with_bias=True, with_last_bn=False,
                              with_avg_pool=False))
MODELS = {
    'BSIMMoCo': dict(queue_len=16, feat_dim=8, momentum=0.1,
                     neck=dict(type='MoCoV2Neck', in_channels=32,
                               hid_channels=16, out_channels=8),
                     head=CONTRAST),
    'BSIMSimCLR': dict(neck=dict(type='NonLinearNeck', in_channels=32,
                                 hid_channels=16, out_channels=8,
                                 num_layers=2, with_avg_pool=True),
                       head=CONTRAST),
    'BSIMBYOL': dict(neck=LATENT, head=PREDICT, base_momentum=0.1),
    'BSIMSimSiam': dict(neck=LATENT, head=PREDICT),
}


def _runner(work_dir, hook, algo, load_from=None):
    views = [[], [dict(type='RandomFlip', prob=1.0, direction='horizontal')]]
    return Runner(
        model=dict(type=algo, data_preprocessor=PRE, backbone=BACKBONE,
                   **MODELS[algo]),
        work_dir=work_dir,
        train_dataloader=dict(
            batch_size=4,
            num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=False),
            collate_fn=dict(type='default_collate'),
            dataset=dict(
                type='SyntheticImageDataset', num_samples=16, num_classes=4,
                img_size=16,
                pipeline=[dict(type='MultiView', num_views=[1, 1],
                               transforms=views),
                          dict(type='PackInputs')])),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.05,
                                          momentum=0.9)),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=5),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=2,
                            by_epoch=False),
            logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=[hook],
        randomness=dict(seed=0, deterministic=True),
        default_scope='mmssl_ext',
        load_from=load_from,
        resume=load_from is not None,
        log_level='WARNING')


@pytest.mark.parametrize('algo', list(MODELS))
def test_bsim_resume_is_exact(algo, tmp_path):
    try:
        full = _PinRNGAndRecord()
        r1 = _runner(str(tmp_path / 'full'), full, algo)
        r1.train()
        state1 = {k: v.clone() for k, v in r1.model.state_dict().items()}
        opt1 = r1.optim_wrapper.state_dict()
        resumed = _PinRNGAndRecord()
        r2 = _runner(str(tmp_path / 'resumed'), resumed, algo,
                     load_from=osp.join(str(tmp_path / 'full'),
                                        'iter_2.pth'))
        r2.train()
        state2 = r2.model.state_dict()
        opt2 = r2.optim_wrapper.state_dict()
    finally:
        torch.use_deterministic_algorithms(False)
    assert len(full.logs) == 5 and len(resumed.logs) == 3
    assert full.logs[2:] == resumed.logs  # loss_base, loss_bsim, lambda
    assert all(log['loss_bsim'] != 0 for log in full.logs)
    assert set(state1) == set(state2)
    for k in state1:
        assert torch.equal(state1[k], state2[k]), k
    # SGD momentum buffers of the resumed run equal the uninterrupted run's
    bufs1 = opt1['state']
    bufs2 = opt2['state']
    assert set(bufs1) == set(bufs2) and len(bufs1) > 0
    for i in bufs1:
        assert torch.equal(bufs1[i]['momentum_buffer'],
                           bufs2[i]['momentum_buffer']), i
    if algo == 'BSIMMoCo':
        assert int(state2['queue.ptr']) == (5 * 4) % 16
    if algo == 'BSIMBYOL':  # the EMA target moved, and was restored
        assert any('target_net' in k for k in state1)
