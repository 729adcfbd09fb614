# MoCo v2 (MMPretrain's `MoCo`) on the embedded digits: the baseline of the
# demo and of the digits benchmarks. Every digits recipe of this package uses
# the same backbone, batch, schedule and augmentation.
_base_ = [
    '../_base_/models/resnet18_cifar_digits.py',
    '../_base_/datasets/digits_bs64.py',
    '../_base_/datasets/digits_knn.py',
    '../_base_/schedules/sgd_coslr_digits.py',
    '../_base_/default_runtime.py',
]

model = dict(
    type='MoCo',
    queue_len=1024,  # 4,000 training images; 65,536 on ImageNet
    feat_dim=64,
    momentum=0.001,  # MMEngine convention (weight of the new value): m=0.999
    backbone={{_base_.backbone}},
    neck=dict(
        type='MoCoV2Neck',
        in_channels={{_base_.backbone_out_channels}},
        hid_channels=256,
        out_channels=64,
        with_avg_pool=True),
    head=dict(
        type='ContrastiveHead',
        loss=dict(type='CrossEntropyLoss'),
        temperature=0.2))

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=2,
                    save_best='knn/top1', rule='greater'))
randomness = dict(seed=0)
