# BYOL (MMPretrain's `BYOL`) on the embedded digits: the baseline row of
# BSIM-BYOL. Backbone, batch, schedule (SGD), augmentation and kNN evaluation
# are those of every digits recipe; heads scaled down from MMPretrain's.
_base_ = [
    '../_base_/models/resnet18_cifar_digits.py',
    '../_base_/datasets/digits_bs64.py',
    '../_base_/datasets/digits_knn.py',
    '../_base_/schedules/sgd_coslr_digits.py',
    '../_base_/default_runtime.py',
]

model = dict(
    type='BYOL',
    # target momentum tau = 0.9 at the start (MMEngine convention: weight of
    # the new value, cosine-annealed to 0): chosen on the validation split
    # over BYOL's 0.99 for this short budget (docs/digits.md)
    base_momentum=0.1,
    backbone={{_base_.backbone}},
    neck=dict(
        type='NonLinearNeck',
        in_channels={{_base_.backbone_out_channels}},
        hid_channels=256,
        out_channels=64,
        num_layers=2,
        with_bias=True,
        with_last_bn=False,
        norm_cfg=dict(type='BN1d'),
        with_avg_pool=True),
    head=dict(
        type='LatentPredictHead',
        predictor=dict(
            type='NonLinearNeck',
            in_channels=64,
            hid_channels=256,
            out_channels=64,
            num_layers=2,
            with_bias=True,
            with_last_bn=False,
            norm_cfg=dict(type='BN1d'),
            with_avg_pool=False),
        loss=dict(type='CosineSimilarityLoss')))

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=2,
                    save_best='knn/top1', rule='greater'))
randomness = dict(seed=0)
