# NPID on the embedded digits (4,000 train / 1,000 test, 32x32): the common
# digits setting (CIFAR ResNet-18 with 16 base channels, batch 64, 20-epoch
# cosine schedule, kNN evaluation), one view of the MoCo v2 digits
# augmentation. OUR SETTINGS: 4,096 negatives (the bank holds 4,000),
# T = 0.07, memory momentum 0.5 (weight of the new feature), 128-d.
#   python tools/train.py configs/npid/npid_resnet18-cifar_1xb64-coslr-20e_digits.py
_base_ = [
    '../_base_/models/resnet18_cifar_digits.py',
    '../_base_/datasets/digits_bs64.py',
    '../_base_/datasets/digits_knn.py',
    '../_base_/schedules/sgd_coslr_digits.py',
    '../_base_/default_runtime.py',
]
num_train = 4000
train_dataloader = dict(
    dataset=dict(pipeline=[
        dict(type='MultiView', num_views=1,
             transforms=[{{_base_.view_pipeline}}]),
        dict(type='PackInputs'),
    ]))

model = dict(
    type='NPID',
    neg_num=4096,
    ensure_neg=False,
    backbone={{_base_.backbone}},
    neck=dict(type='LinearNeck',
              in_channels={{_base_.backbone_out_channels}},
              out_channels=128, gap_dim=2),
    head=dict(type='ContrastiveHead', loss=dict(type='CrossEntropyLoss'),
              temperature=0.07),
    memory=dict(type='FeatureMemory', length=num_train, feat_dim=128,
                momentum=0.5))

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=2,
                    save_best='knn/top1', rule='greater'))
randomness = dict(seed=0)
