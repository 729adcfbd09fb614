# Invariance Propagation (InvP), ImageNet-1k, ResNet-50: the authors' README
# command (`--network resnet50 --n_background 4096 --t 0.2 --blur --cos
# --nonlinearhead 1 --weight_decay 1e-4`, other flags at their defaults:
# 800 epochs, batch 128, lr 0.03, m 0.5, lam_inv 0.6, diffusion_layer 3,
# K_nearst 4, n_pos 50, exclusive 1, binary ramp-up at epoch 30).
# Batch 128 = 8 GPUs x 16 (the authors used one DataParallel job; BN is
# per-GPU there too, so plain BN rather than SyncBN).
_base_ = ['../_base_/default_runtime.py']

data_len = 1281167  # ImageNet-1k train images = memory-bank rows

model = dict(
    type='InvP',
    data_len=data_len,
    feat_dim=128,
    # our convention: weight of the NEW feature; authors' m=0.5 (weight of
    # the old entry) -> 1 - 0.5 = 0.5
    memory_momentum=0.5,
    bank_init='uniform',
    num_neighbours=4,
    lambda_inv=0.6,
    ramp_up='binary',
    ramp_epochs=30,
    data_preprocessor=dict(
        type='SelfSupDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True),
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
view_pipeline = [
    dict(type='RandomResizedCrop', scale=224, crop_ratio_range=(0.2, 1.),
         backend='pillow'),
    dict(type='RandomApply',
         transforms=[dict(type='ColorJitter', brightness=0.4, contrast=0.4,
                          saturation=0.4, hue=0.1)],
         prob=0.8),
    dict(type='RandomGrayscale', prob=0.2, keep_channels=True,
         channel_weights=(0.114, 0.587, 0.2989)),
    dict(type='GaussianBlur', magnitude_range=(0.1, 2.0),
         magnitude_std='inf', prob=0.5),
    dict(type='RandomFlip', prob=0.5),
]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='MultiView', num_views=1, transforms=[view_pipeline]),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short', backend='pillow'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=16,
    num_workers=8,
    drop_last=True,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='ImageNet', data_root='data/imagenet/', split='train',
                 pipeline=train_pipeline))

# weighted-kNN monitor over the memory bank, every epoch (K=200, sigma=0.07)
val_dataloader = dict(
    batch_size=64,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='ImageNet', data_root='data/imagenet/', split='val',
                 pipeline=test_pipeline))
val_evaluator = dict(type='KNNAccuracy', topk=(1, 5))
val_cfg = dict(type='MemoryBankKNNValLoop', k=200, sigma=0.07)
test_dataloader = val_dataloader
test_evaluator = val_evaluator
test_cfg = dict(
    type='MemoryBankKNNTestLoop', k=200, sigma=0.07,
    label_dataset=dict(type='ImageNet', data_root='data/imagenet/',
                       split='train', pipeline=[]))

# SGD lr 0.03, momentum 0.9, wd 1e-4; cosine decay stepped once per epoch
# (the authors' adjust_learning_rate with --cos)
max_epochs = 800
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.03, momentum=0.9, weight_decay=1e-4))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=max_epochs, by_epoch=True,
         begin=0, end=max_epochs)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs,
                 val_interval=1)
auto_scale_lr = dict(base_batch_size=128)

# replicated bank/table are updated from all-gathered samples on every
# rank: DDP must not broadcast buffers (a whole bank) every iteration
model_wrapper_cfg = dict(type='MMDistributedDataParallel',
                         broadcast_buffers=False)

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=3,
                    save_best='knn/top1', rule='greater'))
