# MoCo v2 + CLD on the embedded digits: the package's MoCo v2 digits recipe
# (configs/mocov2/mocov2_resnet18-cifar_1xb64-coslr-20e_digits.py: same
# backbone, batch, schedule, augmentation, queue 256, tau_I 0.2, key
# momentum 0.9, 64-d output, 256-d BN hidden layer) with CLD's three views and
# group branch in the ImageNet MoCo v2 + CLD form ("NormMLP" head, tau_G 0.4,
# lambda 0.25). K=32 groups for 64 samples per batch is a derived setting.
_base_ = [
    '../_base_/models/resnet18_cifar_digits.py',
    '../_base_/datasets/digits_bs64.py',
    '../_base_/datasets/digits_knn.py',
    '../_base_/schedules/sgd_coslr_digits.py',
    '../_base_/default_runtime.py',
]

train_pipeline = [
    dict(type='MultiView', num_views=3,
         transforms=[{{_base_.view_pipeline}}]),
    dict(type='PackInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

model = dict(
    type='MoCoCLD',
    backbone={{_base_.backbone}},
    neck=dict(
        type='CLDNeck',
        in_channels={{_base_.backbone_out_channels}},
        hid_channels=256,
        out_channels=64,
        proj_type='normed',
        # BN in the hidden layer, as the MoCo v2 digits recipe's head
        norm_cfg=dict(type='BN1d')),
    head=dict(
        type='ContrastiveHead',
        loss=dict(type='CrossEntropyLoss'),
        temperature=0.2),
    group_head=dict(
        type='GroupBranch',
        num_groups=32,
        temperature=0.4,
        loss_weight=0.25,
        grouping='kmeans',
        num_iters=5),
    # key momentum and queue of the MoCo v2 digits recipe (its base row)
    queue_len=256,
    feat_dim=64,
    momentum=0.1,  # MMEngine convention (weight of the new value): m=0.9
    key_view=1,
    shuffle_bn=True)

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=2,
                    save_best='knn/top1', rule='greater'))
randomness = dict(seed=0)
