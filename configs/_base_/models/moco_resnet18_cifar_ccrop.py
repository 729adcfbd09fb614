# MoCo (v2-style MLP head) as in ContrastiveCrop's small-data code: dim 128,
# K = 65,536, m = 0.999, T = 0.2, loss not symmetrised.
# MMEngine momentum convention (weight of the NEW value): 1 - 0.999 = 0.001.
model = dict(
    type='MoCo',
    queue_len=65536,
    feat_dim=128,
    momentum=0.001,
    backbone=dict(
        type='ResNet_CIFAR', depth=18, norm_cfg=dict(type='BN'),
        zero_init_residual=False),
    neck=dict(
        type='MoCoV2Neck', in_channels=512, hid_channels=512,
        out_channels=128, with_avg_pool=True),
    head=dict(
        type='ContrastiveHead', loss=dict(type='CrossEntropyLoss'),
        temperature=0.2))
