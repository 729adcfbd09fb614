# SimSiam as in ContrastiveCrop's small-data code: zero-init residual;
# 3-layer projector at 512 with BN (last BN without affine); predictor
# 512 -> 128 -> 512; loss -1/2 (cos(p1, z2) + cos(p2, z1)) (MMPretrain's
# SimSiam with CosineSimilarityLoss(shift 0, scale 1)); predictor lr fixed
# (paramwise fix_lr + SimSiamHook in the algorithm configs).
model = dict(
    type='SimSiam',
    backbone=dict(
        type='ResNet_CIFAR', depth=18, norm_cfg=dict(type='BN'),
        zero_init_residual=True),
    neck=dict(
        type='NonLinearNeck', in_channels=512, hid_channels=512,
        out_channels=512, num_layers=3, with_last_bn_affine=False,
        with_avg_pool=True, norm_cfg=dict(type='BN1d')),
    head=dict(
        type='LatentPredictHead',
        loss=dict(type='CosineSimilarityLoss'),
        predictor=dict(
            type='NonLinearNeck', in_channels=512, hid_channels=128,
            out_channels=512, with_avg_pool=False, with_last_bn=False,
            with_last_bias=True, norm_cfg=dict(type='BN1d'))))
