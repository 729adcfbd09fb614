# ContrastiveCrop + MoCo v2 on ImageNet-1k (authors' configs/IN1K/
# mocov2_ccrop.py): ResNet-50, batch 256 (8 x 32), SGD lr 0.03, wd 1e-4,
# cosine, 100 epochs; alpha 0.6, warm-up 20 epochs, boxes refreshed after
# epochs 20/40/60/80, threshold 0.1; the refresh reads every training image
# resized to 224x224 (stretched, as the authors' eval transform).
# MoCo v2 augmentation with ContrastiveCrop in place of RandomResizedCrop.
# RCrop baseline: --cfg-options custom_hooks.0.warmup_epochs=100
_base_ = ['../_base_/default_runtime.py']

data_preprocessor = dict(
    type='SelfSupDataPreprocessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True)

view_pipeline = [
    dict(type='ContrastiveCrop', scale=224, alpha=0.6,
         crop_ratio_range=(0.2, 1.), backend='pillow'),
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
    dict(type='MultiView', num_views=2, transforms=[view_pipeline]),
    dict(type='PackInputs')
]
ccrop_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(224, 224), keep_ratio=False,
         backend='pillow'),
    dict(type='PackInputs')
]

train_dataloader = dict(
    batch_size=32,
    num_workers=8,
    drop_last=True,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='ContrastiveCropDataset',
        dataset=dict(
            type='ImageNet',
            data_root='data/imagenet/',
            split='train',
            pipeline=train_pipeline)))

# MMEngine momentum convention (weight of the new value): 1 - 0.999
model = dict(
    type='MoCo',
    queue_len=65536,
    feat_dim=128,
    momentum=0.001,
    backbone=dict(type='ResNet', depth=50, norm_cfg=dict(type='BN'),
                  zero_init_residual=False),
    neck=dict(type='MoCoV2Neck', in_channels=2048, hid_channels=2048,
              out_channels=128, with_avg_pool=True),
    head=dict(type='ContrastiveHead', loss=dict(type='CrossEntropyLoss'),
              temperature=0.2))

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.03, weight_decay=1e-4, momentum=0.9))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=100, by_epoch=True, begin=0,
         end=100)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=100)
default_hooks = dict(checkpoint=dict(interval=10, max_keep_ckpts=3))
custom_hooks = [
    dict(type='ContrastiveCropHook', warmup_epochs=20, interval=20,
         threshold=0.1, pipeline=ccrop_test_pipeline, num_workers=8)
]
auto_scale_lr = dict(base_batch_size=256)
