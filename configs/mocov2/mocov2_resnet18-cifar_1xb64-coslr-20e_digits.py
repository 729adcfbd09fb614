# MoCo v2 (MMPretrain's `MoCo`) on the embedded digits: the baseline of the
# demo and of every MoCo-based digits row (InterCLR, CLD, BSIM,
# ContrastiveCrop). Every digits recipe uses the same backbone, batch,
# schedule and augmentation (configs/_base_/*digits*).
#
# Short-run recipe, chosen on the validation split (docs/digits.md): with
# MoCo's ImageNet settings (MLP head without BN, key momentum 0.999, a queue
# holding a quarter of the data set) the loss stays near chance for the
# whole CPU budget and kNN falls below the random-init network. Three
# changes make it learn, each measured on the validation split:
# * a projection head with BatchNorm (SimCLR's two-layer BN MLP),
# * key-encoder momentum m = 0.9 (the key encoder follows the query
#   encoder within ~10 iterations instead of ~1,000),
# * a queue of 256 keys (4 batches: negatives from nearly the current
#   encoder).
_base_ = [
    '../_base_/models/resnet18_cifar_digits.py',
    '../_base_/datasets/digits_bs64.py',
    '../_base_/datasets/digits_knn.py',
    '../_base_/schedules/sgd_coslr_digits.py',
    '../_base_/default_runtime.py',
]

model = dict(
    type='MoCo',
    queue_len=256,  # 65,536 on ImageNet
    feat_dim=64,
    momentum=0.1,  # MMEngine convention (weight of the new value): m=0.9
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

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=2,
                    save_best='knn/top1', rule='greater'))
randomness = dict(seed=0)
