# NPID + CLD on CIFAR-10 (authors' scripts/cifar/train_cifar10_npid_cld.sh):
# ResNet-18 (CIFAR stem), two views, full non-parametric softmax over the
# 50,000-entry memory (tau_I 0.1, memory momentum 0.5), in-batch k-means
# groups (K=128, 5 iterations, tau_G 0.2, lambda 1.0), batch 256, lr 0.06
# (0.03 x 256/128), wd 7e-4, 5 warm-up epochs from lr/100 then cosine to 1e-6,
# both stepped per iteration, 200 epochs. kNN (k=200) as the monitor.
# The authors trained with apex O1: add `--amp` to tools/train.py for that.
_base_ = [
    '../_base_/datasets/cifar10.py',
    '../_base_/datasets/cifar10_knn.py',
    '../_base_/default_runtime.py',
]

# ---------------------------------------------------------------- data
num_train = 50000
# the authors' default CIFAR augmentation (colour jitter always applied)
view_pipeline = [
    dict(type='RandomResizedCrop', scale=32, crop_ratio_range=(0.2, 1.),
         backend='pillow'),
    dict(type='ColorJitterRGB', brightness=0.4, contrast=0.4, saturation=0.4,
         hue=0.4),
    dict(type='RandomGrayscale', prob=0.2, keep_channels=True,
         channel_weights=(0.2989, 0.587, 0.114)),  # RGB order
    dict(type='RandomFlip', prob=0.5),
]
train_pipeline = [
    dict(type='MultiView', num_views=2, transforms=[view_pipeline]),
    dict(type='PackInputs')
]
train_dataloader = dict(
    batch_size=256,
    # as the authors: the last batch has 80 samples (configs/cld/README.md)
    drop_last=False,
    dataset=dict(pipeline=train_pipeline))

# weighted kNN (k=200, sigma = tau_I) on backbone features, every 10 epochs
# (train_cfg.val_interval) and in tools/test.py
val_cfg = dict(sigma=0.1)
test_cfg = dict(sigma=0.1)

# ---------------------------------------------------------------- model
model = dict(
    type='NPIDCLD',
    data_preprocessor=_base_.data_preprocessor,
    backbone=dict(
        type='ResNet_CIFAR',
        depth=18,
        norm_cfg=dict(type='BN'),
        zero_init_residual=False),
    neck=dict(
        type='CLDNeck',
        in_channels=512,
        out_channels=128,
        proj_type='linear'),
    # CLD/lemniscate m=0.5 weights the old entry; ours weights the new
    # feature (momentum = 1 - m): the same at 0.5
    memory=dict(
        type='FeatureMemory', length=num_train, feat_dim=128, momentum=0.5),
    group_head=dict(
        type='GroupBranch',
        num_groups=128,
        temperature=0.2,
        loss_weight=1.0,
        grouping='kmeans',
        num_iters=5),
    temperature=0.1)

# ---------------------------------------------------------------- schedule
max_epochs = 200
warmup_epochs = 5
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.06, momentum=0.9, weight_decay=7e-4))
# GradualWarmupScheduler(multiplier=100, 5 epochs) + cosine to 1e-6 over
# the remaining epochs, stepped per iteration
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, end_factor=1.0, by_epoch=True,
         begin=0, end=warmup_epochs, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs,
         eta_min=1e-6, by_epoch=True, begin=warmup_epochs, end=max_epochs,
         convert_to_iter_based=True)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs,
                 val_interval=10)
auto_scale_lr = dict(base_batch_size=256)

default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=3))
randomness = dict(seed=0)
