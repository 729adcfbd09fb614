# Invariance Propagation (InvP), ImageNet-1k, ResNet-50: the authors' README
# command (`--network resnet50 --n_background 4096 --t 0.2 --blur --cos
# --nonlinearhead 1 --weight_decay 1e-4`, other flags at their defaults:
# 800 epochs, batch 128, lr 0.03, m 0.5, lam_inv 0.6, diffusion_layer 3,
# K_nearst 4, n_pos 50, exclusive 1, binary ramp-up at epoch 30).
# Batch 128 = 8 GPUs x 16 (the authors used one DataParallel job; BN is
# per-GPU there too, so plain BN rather than SyncBN).
# Data: MMPretrain's MoCo v2 augmentation (`--blur`), one view per image;
# schedule: MMPretrain's SGD + per-epoch cosine (the authors'
# adjust_learning_rate with --cos) stretched to 800 epochs; monitor: the
# ImageNet kNN base with InvP's memory-bank loop. See configs/invp/README.md.
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs32_mocov2.py',
    '../_base_/datasets/imagenet_knn.py',
    'mmpretrain::_base_/schedules/imagenet_sgd_coslr_200e.py',
    '../_base_/default_runtime.py',
]

data_len = 1281167  # ImageNet-1k train images = memory-bank rows

model = dict(
    type='InvP',
    # bank + kNN table; our convention: momentum weights the NEW feature;
    # authors' m=0.5 (weight of the old entry) -> 1 - 0.5 = 0.5
    memory=dict(type='NeighbourMemory', length=data_len, feat_dim=128,
                momentum=0.5, init='uniform', num_neighbours=4),
    lambda_inv=0.6,
    ramp_up='binary',
    ramp_epochs=30,
    data_preprocessor=_base_.data_preprocessor,
    backbone=dict(
        type='ResNet',
        depth=50,
        norm_cfg=dict(type='BN'),
        zero_init_residual=False),
    # nonlinearhead=1: fc(2048, 2048)-relu-fc(2048, 128), Xavier init
    neck=dict(
        type='MoCoV2Neck',
        in_channels=2048,
        hid_channels=2048,
        out_channels=128,
        with_avg_pool=True,
        init_cfg=dict(type='Xavier', layer='Linear', distribution='uniform')),
    loss=dict(
        type='InvPLoss',
        temperature=0.2,
        n_background=4096,
        diffusion_layer=3,
        n_pos=50,
        hard_positive=True,
        denominator='exclusive',
        propagation='concat'))

# MoCo v2 augmentation (`--blur`), ONE view per image per iteration
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='MultiView', num_views=1, transforms=[_base_.view_pipeline]),
    dict(type='PackInputs'),
]
# collate_fn restated without the `_scope_` tag MMEngine adds to dicts
# inherited from `mmpretrain::` bases (TypeError at the first batch)
train_dataloader = dict(
    collate_fn=dict(_delete_=True, type='default_collate'),
    batch_size=16, dataset=dict(pipeline=train_pipeline))

# weighted-kNN monitor over the memory bank itself (no bank pass), every
# epoch (K=200, sigma=0.07); the checkpoint with the best top-1 is kept
val_dataloader = dict(persistent_workers=True)
val_cfg = dict(_delete_=True, type='MemoryBankKNNValLoop', k=200, sigma=0.07)
test_dataloader = dict(persistent_workers=True)
test_cfg = dict(
    _delete_=True,
    type='MemoryBankKNNTestLoop', k=200, sigma=0.07,
    label_dataset=dict(type='ImageNet', data_root='data/imagenet/',
                       split='train', pipeline=[]))

max_epochs = 800
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=max_epochs, by_epoch=True,
         begin=0, end=max_epochs)
]
train_cfg = dict(max_epochs=max_epochs, val_interval=1)
auto_scale_lr = dict(base_batch_size=128)

# replicated bank/table are updated from all-gathered samples on every
# rank: DDP must not broadcast buffers (a whole bank) every iteration
model_wrapper_cfg = dict(type='MMDistributedDataParallel',
                         broadcast_buffers=False)

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=3,
                    save_best='knn/top1', rule='greater'))
