# BSIM-SimCLR on CIFAR-10, CIFAR ResNet-18 stem. Data, schedule and kNN
# monitor are those of the BSIM-MoCo CIFAR recipe (after the Un-Mix demo);
# SimCLR's CIFAR temperature 0.5 (SimCLR paper, appendix B.9).
_base_ = ['./bsim-mocov2_resnet18-cifar_1xb512-coslr-1000e_cifar10.py']

model = dict(
    _delete_=True,
    type='BSIMSimCLR',
    backbone=dict(
        type='ResNet_CIFAR',
        depth=18,
        norm_cfg=dict(type='BN'),
        zero_init_residual=True),
    neck=dict(
        type='NonLinearNeck',
        in_channels=512,
        hid_channels=2048,
        out_channels=128,
        num_layers=2,
        norm_cfg=dict(type='BN1d'),
        with_avg_pool=True),
    head=dict(
        type='ContrastiveHead',
        loss=dict(type='CrossEntropyLoss'),
        temperature=0.5),
    # BSIM knobs (configs/bsim/README.md)
    mixture=dict(mix_mode='both', p_mixup=0.5, alpha=1.0,
                 pairing='reverse', mixed_view='a',
                 symmetric_mix=False, beta_weight=1.0))
