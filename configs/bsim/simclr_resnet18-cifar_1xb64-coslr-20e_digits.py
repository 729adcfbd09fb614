# SimCLR (MMPretrain's `SimCLR`) on the embedded digits: the baseline row of
# BSIM-SimCLR. Backbone, batch, schedule, augmentation and kNN evaluation are
# those of every digits recipe (see the MoCo v2 digits recipe).
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
        type='NonLinearNeck',
        in_channels={{_base_.backbone_out_channels}},
        hid_channels=256,
        out_channels=64,
        num_layers=2,
        norm_cfg=dict(type='BN1d'),
        with_avg_pool=True),
    head=dict(
        type='ContrastiveHead',
        loss=dict(type='CrossEntropyLoss'),
        temperature=0.2))

# twice the shared digits learning rate: chosen on the validation split
# (docs/digits.md); every SimCLR-based digits row inherits it
optim_wrapper = dict(optimizer=dict(lr=0.06))

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=2,
                    save_best='knn/top1', rule='greater'))
randomness = dict(seed=0)
