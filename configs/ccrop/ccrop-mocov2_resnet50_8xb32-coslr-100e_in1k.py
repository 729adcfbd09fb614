# ContrastiveCrop + MoCo v2 on ImageNet-1k (authors' configs/IN1K/
# mocov2_ccrop.py): ResNet-50, batch 256 (8 x 32), SGD lr 0.03, wd 1e-4,
# cosine, 100 epochs; alpha 0.6, warm-up 20 epochs, boxes refreshed after
# epochs 20/40/60/80, threshold 0.1; the refresh reads every training image
# resized to 224x224 (stretched, as the authors' eval transform).
# Data: MMPretrain's MoCo v2 augmentation with ContrastiveCrop in place of
# RandomResizedCrop; schedule: MMPretrain's SGD + cosine, 100 epochs.
# RCrop baseline: --cfg-options custom_hooks.0.warmup_epochs=100
# See configs/ccrop/README.md.
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs32_mocov2.py',
    'mmpretrain::_base_/schedules/imagenet_sgd_coslr_200e.py',
    '../_base_/default_runtime.py',
]

view_pipeline = [
    dict(type='ContrastiveCrop', scale=224, alpha=0.6,
         crop_ratio_range=(0.2, 1.), backend='pillow'),
    *_base_.view_pipeline[1:],
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
# the data set is wrapped so that the crop reads each image's box; the inner
# data set is built in this package's scope (ContrastiveCrop is ours)
# collate_fn restated without the `_scope_` tag MMEngine adds to dicts
# inherited from `mmpretrain::` bases (TypeError at the first batch)
train_dataloader = dict(
    collate_fn=dict(_delete_=True, type='default_collate'),
    dataset=dict(
        _delete_=True,
        type='ContrastiveCropDataset',
        dataset=dict(
            type=_base_.dataset_type,
            data_root=_base_.data_root,
            split='train',
            pipeline=train_pipeline)))

# MMPretrain's mocov2_resnet50_8xb32-coslr-200e_in1k model (that config also
# carries MMPretrain's runtime, so the model is restated rather than
# inherited). MMEngine momentum convention (weight of the new value):
# 1 - 0.999
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

max_epochs = 100
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=max_epochs, by_epoch=True, begin=0,
         end=max_epochs)
]
train_cfg = dict(max_epochs=max_epochs)
default_hooks = dict(checkpoint=dict(interval=10, max_keep_ckpts=3))
custom_hooks = [
    dict(type='ContrastiveCropHook', warmup_epochs=20, interval=20,
         threshold=0.1, pipeline=ccrop_test_pipeline, num_workers=8)
]
auto_scale_lr = dict(base_batch_size=256)
