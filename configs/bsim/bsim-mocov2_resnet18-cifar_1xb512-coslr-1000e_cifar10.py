# BSIM-MoCo on CIFAR-10 with the CIFAR ResNet-18 stem (3x3 conv, no
# max-pool). No BSIM CIFAR recipe was published: this follows the Un-Mix
# MoCo CIFAR demo, the closest public mixture-view code (dim 128, queue
# 4096, m 0.99, T 0.1, SGD lr 0.06 / wd 5e-4 / batch 512, cosine, 1000
# epochs, kNN k=200 t=0.1); see configs/bsim/README.md. Differences: plain BN
# instead of the demo's split-BN (8 splits), and MMPretrain's MoCo v2 MLP
# neck instead of the demo's linear head.
_base_ = [
    '../_base_/datasets/cifar10.py',
    '../_base_/datasets/cifar10_knn.py',
    '../_base_/default_runtime.py',
]

# Un-Mix's augmentation = the CIFAR-10 base's, with crops from 8% of the
# image (RandomResizedCrop's default scale)
view_pipeline = [
    dict(_base_.view_pipeline[0], crop_ratio_range=(0.08, 1.)),
    *_base_.view_pipeline[1:],
]
train_pipeline = [
    dict(type='MultiView', num_views=2, transforms=[view_pipeline]),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=512, num_workers=8, dataset=dict(pipeline=train_pipeline))

# weighted kNN monitor on the test split (Un-Mix: k=200, t=0.1)
val_dataloader = dict(batch_size=512)
val_cfg = dict(bank_dataloader=dict(batch_size=512), sigma=0.1)
test_dataloader = val_dataloader
test_cfg = val_cfg

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
    # BSIM's mixture term (configs/bsim/README.md; defaults not confirmed by
    # the paper)
    mixture=dict(mix_mode='both', p_mixup=0.5, alpha=1.0,
                 pairing='reverse', mixed_view='a',
                 symmetric_mix=False, beta_weight=1.0))

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
