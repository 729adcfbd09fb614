# MoCo + CLD on CIFAR-10 (authors' scripts/cifar/train_cifar10_moco_cld.sh):
# three views (two queries through the online encoder, one key through the
# momentum encoder with shuffle-BN), queue 12,288, tau_I 0.07, key momentum
# 0.999 (MMEngine convention: momentum=0.001 weights the new parameters),
# NormedLinear projections, K=200 groups, lambda 0.8, tau_G 0.2;
# MoCo v2 augmentation ("--aug-plus", blur included) + RandomErasing(p=1);
# batch 256, lr 0.06, wd 8e-4, 5 warm-up epochs from lr/100 then cosine to
# 1e-6 per iteration, 200 epochs.
_base_ = ['./cld-npid_resnet18-cifar_1xb256-coslr-200e_cifar10.py']

# MoCo v2 augmentation at 32 px, then torchvision's RandomErasing(p=1.0)
# (area 0.02-0.33, aspect 0.3-3.3, value 0 after normalisation = the mean
# pixel before it)
view_pipeline = [
    dict(type='RandomResizedCrop', scale=32, crop_ratio_range=(0.2, 1.),
         backend='pillow'),
    dict(type='RandomApply',
         transforms=[dict(type='ColorJitterRGB', brightness=0.4, contrast=0.4,
                          saturation=0.4, hue=0.1)],
         prob=0.8),
    dict(type='RandomGrayscale', prob=0.2, keep_channels=True,
         channel_weights=(0.2989, 0.587, 0.114)),  # RGB order
    dict(type='GaussianBlur', magnitude_range=(0.1, 2.0),
         magnitude_std='inf', prob=0.5),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomErasing', erase_prob=1.0, min_area_ratio=0.02,
         max_area_ratio=0.33, aspect_range=(0.3, 3.3), mode='const',
         fill_color=(125, 123, 114)),
]
train_pipeline = [
    dict(type='MultiView', num_views=3, transforms=[view_pipeline]),
    dict(type='PackInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

model = dict(
    _delete_=True,
    type='MoCoCLD',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(
        type='ResNet_CIFAR',
        depth=18,
        norm_cfg=dict(type='BN'),
        zero_init_residual=False),
    neck=dict(
        type='CLDNeck',
        in_channels=512,
        out_channels=128,
        proj_type='normed'),
    head=dict(
        type='ContrastiveHead',
        loss=dict(type='CrossEntropyLoss'),
        temperature=0.07),
    group_head=dict(
        type='GroupBranch',
        num_groups=200,
        temperature=0.2,
        loss_weight=0.8,
        grouping='kmeans',
        num_iters=5),
    queue_len=12288,
    feat_dim=128,
    momentum=0.001,
    key_view=2,
    shuffle_bn=True)

optim_wrapper = dict(optimizer=dict(lr=0.06, weight_decay=8e-4))
# kNN sigma = tau_I
val_cfg = dict(sigma=0.07)
test_cfg = dict(sigma=0.07)
