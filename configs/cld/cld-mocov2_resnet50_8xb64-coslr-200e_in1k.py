# MoCo v2 + CLD on ImageNet-1k (authors' scripts/imagenet/
# train_imagenet_mocov2_cld.sh, main_imagenet_moco_cld.py): ResNet-50,
# 8 GPUs x 64 = 512, three views (images[0] -> query 1, images[1] -> key,
# images[2] -> query 2), queue 65,536, tau_I 0.2, key momentum 0.999
# (momentum=0.001 in the MMEngine convention), "NormMLP" head (shared
# Linear(2048, 2048) + ReLU, then NormedLinear instance and group
# projections), K=120 groups **per GPU** (> 64 samples per GPU: every sample
# is its own group, as intended by the authors: their issue #11), tau_G 0.4,
# lambda 0.25; SGD lr 0.2, wd 1e-4, per-epoch cosine (no warm-up),
# 200 epochs, apex O1 -> AmpOptimWrapper.
# K=120 is the authors' scripts/imagenet/train_imagenet_mocov2_cld.sh
# (clusters=120 since 2021-05-06; its first version and the argparse default
# of main_imagenet_moco_cld.py use 100; the README gives no K; issue #11
# confirms 120) (model.group_head.num_groups).
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs32_mocov2.py',
    'mmpretrain::_base_/schedules/imagenet_sgd_coslr_200e.py',
    '../_base_/default_runtime.py',
]

# MMPretrain's MoCo v2 data (augmentation, preprocessor), three views per
# image, 64 per GPU
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='MultiView', num_views=3, transforms=[_base_.view_pipeline]),
    dict(type='PackInputs')
]
# collate_fn restated without the `_scope_` tag MMEngine adds to dicts
# inherited from `mmpretrain::` bases (TypeError at the first batch)
train_dataloader = dict(
    collate_fn=dict(_delete_=True, type='default_collate'),
    batch_size=64, dataset=dict(pipeline=train_pipeline))

model = dict(
    type='MoCoCLD',
    data_preprocessor=_base_.data_preprocessor,
    backbone=dict(
        type='ResNet',
        depth=50,
        norm_cfg=dict(type='BN'),
        zero_init_residual=False),
    neck=dict(
        type='CLDNeck',
        in_channels=2048,
        hid_channels=2048,
        out_channels=128,
        proj_type='normed'),  # 'linear' = the README's "MLP" row
    head=dict(
        type='ContrastiveHead',
        loss=dict(type='CrossEntropyLoss'),
        temperature=0.2),
    group_head=dict(
        type='GroupBranch',
        num_groups=120,
        temperature=0.4,
        loss_weight=0.25,
        grouping='kmeans',
        num_iters=5,
        gather=False),  # per-GPU k-means, as the authors
    queue_len=65536,
    feat_dim=128,
    momentum=0.001,
    key_view=1,
    shuffle_bn=True)

# MMPretrain's 200-epoch SGD + cosine schedule at CLD's lr 0.2 (batch 512),
# apex O1 -> AMP
optim_wrapper = dict(
    type='AmpOptimWrapper', loss_scale='dynamic', optimizer=dict(lr=0.2))
auto_scale_lr = dict(base_batch_size=512)

default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=3))
