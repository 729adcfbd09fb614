# SimSiam (MMPretrain's `SimSiam`) on the embedded digits: the baseline row
# of BSIM-SimSiam. Backbone, batch, schedule, augmentation and kNN evaluation
# are those of every digits recipe; heads scaled down from MMPretrain's, the
# predictor's lr fixed as in MMPretrain's SimSiam recipe.
_base_ = [
    '../_base_/models/resnet18_cifar_digits.py',
    '../_base_/datasets/digits_bs64.py',
    '../_base_/datasets/digits_knn.py',
    '../_base_/schedules/sgd_coslr_digits.py',
    '../_base_/default_runtime.py',
]

model = dict(
    type='SimSiam',
    backbone={{_base_.backbone}},
    neck=dict(
        type='NonLinearNeck',
        in_channels={{_base_.backbone_out_channels}},
        hid_channels=256,
        out_channels=256,
        num_layers=3,
        with_last_bn_affine=False,
        norm_cfg=dict(type='BN1d'),
        with_avg_pool=True),
    head=dict(
        type='LatentPredictHead',
        loss=dict(type='CosineSimilarityLoss'),
        predictor=dict(
            type='NonLinearNeck',
            in_channels=256,
            hid_channels=64,
            out_channels=256,
            norm_cfg=dict(type='BN1d'),
            with_avg_pool=False,
            with_last_bn=False,
            with_last_bias=True)))

optim_wrapper = dict(paramwise_cfg=dict(
    custom_keys={'predictor': dict(fix_lr=True)}))
custom_hooks = [
    dict(type='SimSiamHook', priority='HIGH', fix_pred_lr=True, lr=0.03)
]

# twice the shared digits learning rate: chosen on the validation split
# (docs/digits.md); BSIM-SimSiam inherits it
optim_wrapper = dict(optimizer=dict(lr=0.06))

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=2,
                    save_best='knn/top1', rule='greater'))
randomness = dict(seed=0)
