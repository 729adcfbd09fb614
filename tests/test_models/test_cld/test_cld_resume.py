"""Resume exactness of NPIDCLD / MoCoCLD with a real mmengine Runner: a run
resumed from epoch 1 ends with the same memory bank / queue / momentum
encoder / weights and logs the same losses as the uninterrupted run."""
import copy
import os.path as osp

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner

TINY_BACKBONE = dict(type='ResNet_CIFAR', depth=18, stem_channels=4,
                     base_channels=4, norm_cfg=dict(type='BN'),
                     zero_init_residual=False)  # 32 output channels


class LossRecorder(Hook):

    def __init__(self):
        self.losses = []

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.losses.append(
            (runner.iter,
             {k: float(torch.as_tensor(v).detach())
              for k, v in outputs.items()}))


def _pipeline(num_views):
    # deterministic views (no RNG in the pipeline, so that the resumed run
    # sees the very same images): identity and horizontal flips
    flips = [[], [dict(type='RandomFlip', prob=1., direction='horizontal')],
             [dict(type='RandomFlip', prob=1., direction='vertical')]]
    return [
        dict(type='MultiView', num_views=[1] * num_views,
             transforms=flips[:num_views]),
        dict(type='PackInputs')
    ]


def _model(kind):
    neck = dict(type='CLDNeck', in_channels=32, out_channels=8,
                proj_type='normed')
    group = dict(type='GroupBranch', num_groups=4, temperature=0.2,
                 loss_weight=0.8)
    if kind == 'npid':
        return dict(type='NPIDCLD', backbone=dict(TINY_BACKBONE), neck=neck,
                    memory=dict(type='FeatureMemory', length=32, feat_dim=8,
                                momentum=0.5),
                    group_head=group, temperature=0.1)
    return dict(type='MoCoCLD', backbone=dict(TINY_BACKBONE), neck=neck,
                head=dict(type='ContrastiveHead',
                          loss=dict(type='CrossEntropyLoss'),
                          temperature=0.07),
                group_head=group, queue_len=12, feat_dim=8, momentum=0.001)


def _cfg(kind, work_dir, max_epochs=2):
    return dict(
        model=_model(kind),
        work_dir=work_dir,
        train_dataloader=dict(
            batch_size=8, num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=True, seed=3),
            collate_fn=dict(type='default_collate'),
            dataset=dict(type='SyntheticImageDataset', num_samples=32,
                         num_classes=4, img_size=16,
                         pipeline=_pipeline(2 if kind == 'npid' else 3))),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9,
                                          weight_decay=1e-4)),
        # CLD's schedule: linear warm-up from lr/100, then cosine, per iter
        param_scheduler=[
            dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0,
                 end=1, convert_to_iter_based=True),
            dict(type='CosineAnnealingLR', T_max=1, eta_min=1e-6,
                 by_epoch=True, begin=1, end=2, convert_to_iter_based=True)
        ],
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=1),
            logger=dict(type='LoggerHook', interval=100)),
        randomness=dict(seed=0, deterministic=True),
        default_scope='mmssl_ext',
        log_level='WARNING')


@pytest.mark.parametrize('kind', ['npid', 'moco'])
def test_resume_is_exact(kind, tmp_path):
    rec_a = LossRecorder()
    cfg = _cfg(kind, str(tmp_path / 'a'))
    runner = Runner(**copy.deepcopy(cfg), custom_hooks=[rec_a])
    runner.train()
    state_a = {k: v.clone() for k, v in runner.model.state_dict().items()}

    rec_b = LossRecorder()
    cfg_b = copy.deepcopy(cfg)
    cfg_b.update(work_dir=str(tmp_path / 'b'), resume=True,
                 load_from=osp.join(str(tmp_path / 'a'), 'epoch_1.pth'))
    runner_b = Runner(**cfg_b, custom_hooks=[rec_b])
    runner_b.train()
    state_b = runner_b.model.state_dict()

    # the resumed run continued from iteration 4 and logged the same losses
    assert [i for i, _ in rec_b.losses] == [4, 5, 6, 7]
    assert rec_b.losses == rec_a.losses[4:]
    assert state_a.keys() == state_b.keys()
    for k in state_a:
        assert torch.equal(state_a[k], state_b[k]), k
    if kind == 'npid':
        assert 'memory.bank' in state_a
    else:
        assert {'queue.queue', 'queue.ptr', 'encoder_k.steps'} <= set(state_a)
        assert int(state_a['queue.ptr']) == (8 * 8) % 12
