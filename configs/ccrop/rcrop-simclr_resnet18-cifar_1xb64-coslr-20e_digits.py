# SimCLR (MMPretrain's) on the embedded digits with plain RandomResizedCrop:
# the baseline row of ccrop-simclr_..._digits.py (same backbone, batch,
# schedule, augmentation and kNN evaluation as every digits recipe).
# Head as in ContrastiveCrop's small-data SimCLR: MLP without BN,
# temperature 0.5, loss x 0.5/0.07.
_base_ = [
    '../_base_/models/resnet18_cifar_digits.py',
    '../_base_/datasets/digits_bs64.py',
    '../_base_/datasets/digits_knn.py',
    '../_base_/schedules/sgd_coslr_digits.py',
    '../_base_/default_runtime.py',
]

model = dict(
    type='SimCLR',
    backbone={{_base_.backbone}},
    neck=dict(
        type='MoCoV2Neck',
        in_channels={{_base_.backbone_out_channels}},
        hid_channels=256,
        out_channels=64,
        with_avg_pool=True),
    head=dict(
        type='ContrastiveHead',
        loss=dict(type='CrossEntropyLoss', loss_weight=0.5 / 0.07),
        temperature=0.5))

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=2,
                    save_best='knn/top1', rule='greater'))
randomness = dict(seed=0)
