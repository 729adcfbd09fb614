# CIFAR-10 linear probe, the Invariance Propagation protocol
# (WangFeng18/InvariancePropagation downstream/linear_classification/
# eval_linear.py): frozen ResNet-18 (CIFAR stem: 3x3 conv, no max-pool),
# pooled 512-d feature, one linear layer; SGD lr 30, momentum 0.9, no weight
# decay, batch 256, 100 epochs, lr x0.2 at epochs 40, 60 and 80.
# Training augmentation: RandomCrop 32 (pad 4) + horizontal flip (our choice;
# the protocol fixes optimiser and schedule). CLD and the MMSelfSup baselines
# report kNN on CIFAR instead: tools/benchmarks/knn_eval.py.
#
# Pre-trained weights (backbone-only file from
# tools/model_converters/extract_backbone_weights.py, path or URL):
#   --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/backbone.pth
_base_ = [
    'mmpretrain::_base_/datasets/cifar10_bs16.py',
    '../../../_base_/default_runtime.py',
]

pretrained = 'work_dirs/pretrain_backbone.pth'  # set with --cfg-options
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='ResNet_CIFAR',
        depth=18,
        num_stages=4,
        out_indices=(3, ),
        style='pytorch',
        frozen_stages=4,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained,
                      prefix=None)),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=10,
        in_channels=512,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, 5)))

train_dataloader = dict(batch_size=256, num_workers=4)
val_dataloader = dict(batch_size=256, num_workers=4)
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_evaluator = val_evaluator

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=30., momentum=0.9, weight_decay=0.))
param_scheduler = [
    dict(type='MultiStepLR', by_epoch=True, milestones=[40, 60, 80],
         gamma=0.2)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=100, val_interval=10)
val_cfg = dict()
test_cfg = dict()

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=2))
