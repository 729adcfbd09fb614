# CPU-sized backbone for 32x32 digits: MMPretrain's CIFAR ResNet-18 stem
# (3x3 conv, no max-pool) with 16 base channels (a quarter of the usual 64),
# so the last stage has 128 channels.
backbone = dict(
    type='ResNet_CIFAR',
    depth=18,
    stem_channels=16,
    base_channels=16,
    norm_cfg=dict(type='BN'),
    zero_init_residual=False)
backbone_out_channels = 128
