# SimCLR as in ContrastiveCrop's small-data code: ResNet-18 with the CIFAR
# stem (3x3 conv, no max-pool); fc replaced by Linear(512, 512)-ReLU-
# Linear(512, 128) (= MMPretrain's MoCoV2Neck, no BN); NT-Xent with
# temperature 0.5 whose loss is multiplied by 0.5 / 0.07 (their
# `NT_Xent_dist(temperature=0.5, base_temperature=0.07)`).
# Their SyncBN equals BN on one GPU (the 1xb512 recipes).
model = dict(
    type='SimCLR',
    backbone=dict(
        type='ResNet_CIFAR', depth=18, norm_cfg=dict(type='BN'),
        zero_init_residual=False),
    neck=dict(
        type='MoCoV2Neck', in_channels=512, hid_channels=512,
        out_channels=128, with_avg_pool=True),
    head=dict(
        type='ContrastiveHead',
        loss=dict(type='CrossEntropyLoss', loss_weight=0.5 / 0.07),
        temperature=0.5))
