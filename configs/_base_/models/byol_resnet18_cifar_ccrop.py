# BYOL as in ContrastiveCrop's small-data code: projector Linear(512, 512)-
# BN-ReLU-Linear(512, 128); predictor 128 -> 512 (BN, ReLU) -> 128;
# loss -2 (cos(p1, z2) + cos(p2, z1)) (= MMPretrain's BYOL with
# CosineSimilarityLoss). Target momentum: base 0.996, i.e. 0.004 in the
# MMEngine convention (weight of the new value).
# DEVIATION: the authors keep 0.996 fixed; MMPretrain's BYOL wraps the
# target in CosineEMA, which raises it to 1 over training (BYOL paper
# schedule). MMPretrain exposes no argument to fix it (config-only port).
model = dict(
    type='BYOL',
    base_momentum=0.004,
    backbone=dict(
        type='ResNet_CIFAR', depth=18, norm_cfg=dict(type='BN'),
        zero_init_residual=False),
    neck=dict(
        type='NonLinearNeck', in_channels=512, hid_channels=512,
        out_channels=128, num_layers=2, with_bias=True,
        with_last_bn=False, with_avg_pool=True, norm_cfg=dict(type='BN1d')),
    head=dict(
        type='LatentPredictHead',
        predictor=dict(
            type='NonLinearNeck', in_channels=128, hid_channels=512,
            out_channels=128, num_layers=2, with_bias=True,
            with_last_bn=False, with_avg_pool=False,
            norm_cfg=dict(type='BN1d')),
        loss=dict(type='CosineSimilarityLoss')))
