# BSIM-MoCo on CIFAR-10 with the CIFAR ResNet-18 stem (3x3 conv, no
# max-pool). No BSIM CIFAR recipe was published: this follows the Un-Mix
# MoCo CIFAR demo that spec 5.3 lists as the closest verified reference
# (dim 128, queue 4096, m 0.99, T 0.1, SGD lr 0.06 / wd 5e-4 / batch 512,
# cosine, 1000 epochs, kNN k=200 t=0.1) [derived]. Differences: plain BN
# instead of the demo's split-BN (8 splits), and MMPretrain's MoCo v2 MLP
# neck instead of the demo's linear head.
_base_ = ['../_base_/default_runtime.py']

data_preprocessor = dict(
    type='SelfSupDataPreprocessor',
    mean=[125.307, 122.961, 113.8575],
    std=[51.5865, 50.847, 51.255],
    to_rgb=False)

view_pipeline = [
    dict(type='RandomResizedCrop', scale=32, crop_ratio_range=(0.08, 1.),
         backend='pillow'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomApply',
         transforms=[dict(type='ColorJitter', brightness=0.4, contrast=0.4,
                          saturation=0.4, hue=0.1)],
         prob=0.8),
    dict(type='RandomGrayscale', prob=0.2, keep_channels=True,
         channel_weights=(0.114, 0.587, 0.2989)),
]
train_pipeline = [
    dict(type='MultiView', num_views=2, transforms=[view_pipeline]),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=512,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    drop_last=True,
    dataset=dict(type='CIFAR10', data_root='data/cifar10', split='train',
                 pipeline=train_pipeline))

# weighted kNN monitor on the test split (Un-Mix: k=200, t=0.1)
_knn_pipeline = [dict(type='PackInputs')]
_knn_loader = dict(
    batch_size=512,
    num_workers=4,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'))
val_dataloader = dict(
    dataset=dict(type='CIFAR10', data_root='data/cifar10', split='test',
                 pipeline=_knn_pipeline),
    **_knn_loader)
val_evaluator = dict(type='KNNAccuracy', topk=(1, 5))
val_cfg = dict(
    type='KNNValLoop',
    bank_dataloader=dict(
        dataset=dict(type='CIFAR10', data_root='data/cifar10', split='train',
                     pipeline=_knn_pipeline),
        **_knn_loader),
    k=200,
    sigma=0.1)

model = dict(
    type='BSIMMoCo',
    queue_len=4096,
    feat_dim=128,
    momentum=0.01,  # MMEngine convention (weight of the new value): m=0.99
    backbone=dict(
        type='ResNet_CIFAR',
        depth=18,
        norm_cfg=dict(type='BN'),
        zero_init_residual=False),
    neck=dict(
        type='MoCoV2Neck',
        in_channels=512,
        hid_channels=512,
        out_channels=128,
        with_avg_pool=True),
    head=dict(
        type='ContrastiveHead',
        loss=dict(type='CrossEntropyLoss'),
        temperature=0.1),
    # BSIM knobs (spec 5.2)
    mix_mode='both',
    p_mixup=0.5,
    alpha=1.0,
    pairing='reverse',
    mixed_view='a',
    symmetric_mix=False,
    beta_weight=1.0)

max_epochs = 1000
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.06, weight_decay=5e-4, momentum=0.9))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=max_epochs, by_epoch=True, begin=0,
         end=max_epochs, convert_to_iter_based=True)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs,
                 val_interval=50)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='CheckpointHook', interval=50, max_keep_ckpts=3))
auto_scale_lr = dict(base_batch_size=512)
