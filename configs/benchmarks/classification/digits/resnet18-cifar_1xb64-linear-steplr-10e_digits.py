# Linear probe on the embedded digits (the demo's downstream check; CPU,
# about a minute): the frozen digits backbone of every digits pre-training
# recipe (MMPretrain ResNet_CIFAR-18, 16 base channels, 128-d pooled
# feature), one linear layer trained on the 4,000 training images and
# evaluated on the 1,000 test images. SGD lr 1, momentum 0.9, no weight
# decay, batch 64, 10 epochs, lr x0.1 at epochs 6 and 8 (the MoCo linear
# protocol shortened; lr 1 instead of 30 because the digits features are
# ~10x larger in norm: lr 0.3-10 gave 60-61 % on cached features of a 3-epoch
# MoCo v2, lr 10 with augmentation oscillated); RandomCrop 32 (pad 2), no
# flip (digits are not mirror-symmetric).
#
#   python tools/model_converters/extract_backbone_weights.py \
#       work_dirs/<recipe>/epoch_20.pth work_dirs/<recipe>/backbone.pth --verify
#   python tools/train.py configs/benchmarks/classification/digits/\
# resnet18-cifar_1xb64-linear-steplr-10e_digits.py \
#       --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/<recipe>/backbone.pth
_base_ = ['../../../_base_/default_runtime.py']

pretrained = 'work_dirs/pretrain_backbone.pth'  # set with --cfg-options
data_preprocessor = dict(
    type='ClsDataPreprocessor',
    num_classes=10,
    mean=[33.3, 33.3, 33.3],
    std=[78.6, 78.6, 78.6],
    to_rgb=False)
model = dict(
    type='ImageClassifier',
    # = configs/_base_/models/resnet18_cifar_digits.py (must match the
    # pre-training backbone), frozen
    backbone=dict(
        type='ResNet_CIFAR',
        depth=18,
        stem_channels=16,
        base_channels=16,
        norm_cfg=dict(type='BN'),
        frozen_stages=4,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained,
                      prefix=None)),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=10,
        in_channels=128,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, 5)))

train_pipeline = [
    dict(type='RandomCrop', crop_size=32, padding=2),
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='PackInputs')]
train_dataloader = dict(
    batch_size=64,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='DigitsDataset', split='train',
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=256,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='DigitsDataset', split='test', pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_evaluator = val_evaluator

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=1., momentum=0.9, weight_decay=0.))
param_scheduler = [
    dict(type='MultiStepLR', by_epoch=True, milestones=[6, 8], gamma=0.1)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=10, val_interval=10)
val_cfg = dict()
test_cfg = dict()

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='CheckpointHook', interval=-1, save_last=True))
randomness = dict(seed=0)
