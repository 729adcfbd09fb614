# NPID + CLD on the embedded digits (4,000 training images, CPU-sized): the
# package's shared digits backbone / batch / schedule / augmentation /
# kNN protocol (see configs/mocov2/..._digits.py), with CLD's instance
# branch (full softmax over the 4,000-entry memory, tau_I 0.1, momentum 0.5)
# and group branch (tau_G 0.2, lambda 1.0, 5 k-means iterations).
# K=32 groups for 64 samples per batch: the CIFAR-10 recipe's ratio
# (K=128 for 256) -- a derived setting, not the authors'.
_base_ = [
    '../_base_/models/resnet18_cifar_digits.py',
    '../_base_/datasets/digits_bs64.py',
    '../_base_/datasets/digits_knn.py',
    '../_base_/schedules/sgd_coslr_digits.py',
    '../_base_/default_runtime.py',
]

num_train = 4000
model = dict(
    type='NPIDCLD',
    backbone={{_base_.backbone}},
    neck=dict(
        type='CLDNeck',
        in_channels={{_base_.backbone_out_channels}},
        out_channels=128,
        proj_type='linear'),
    memory=dict(
        type='FeatureMemory', length=num_train, feat_dim=128, momentum=0.5),
    group_head=dict(
        type='GroupBranch',
        num_groups=32,
        temperature=0.2,
        loss_weight=1.0,
        grouping='kmeans',
        num_iters=5),
    temperature=0.1)

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=2,
                    save_best='knn/top1', rule='greater'))
randomness = dict(seed=0)
