# ImageNet-1k linear probe, the MoCo protocol (He et al. 2020; MMSelfSup /
# MMPretrain `resnet50_8xb32-linear-steplr-100e_in1k`): frozen ResNet-50
# (BN in eval mode), global average pooling, one linear layer; SGD lr 30,
# momentum 0.9, no weight decay, batch 256 (8 GPUs x 32), 100 epochs,
# lr x0.1 at epochs 60 and 80; RandomResizedCrop 224 + flip, test resize 256
# / center crop 224.
#
# Pre-trained weights: the backbone-only file written by
#   python tools/model_converters/extract_backbone_weights.py \
#       PRETRAIN.pth work_dirs/backbone.pth --verify
# passed as
#   --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/backbone.pth
# (local path or URL). For an unconverted pre-training checkpoint add
#   model.backbone.init_cfg.prefix=backbone.
_base_ = [
    'mmpretrain::_base_/models/resnet50.py',
    'mmpretrain::_base_/datasets/imagenet_bs32_pil_resize.py',
    'mmpretrain::_base_/schedules/imagenet_sgd_steplr_100e.py',
    '../../../_base_/default_runtime.py',
]

pretrained = 'work_dirs/pretrain_backbone.pth'  # set with --cfg-options
model = dict(
    backbone=dict(
        frozen_stages=4,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained,
                      prefix=None)))

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=30., momentum=0.9, weight_decay=0.))
param_scheduler = [
    dict(type='MultiStepLR', by_epoch=True, milestones=[60, 80], gamma=0.1)
]
train_cfg = dict(by_epoch=True, max_epochs=100, val_interval=10)

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=100),
    checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=3))
# 8 GPUs x 32 images
auto_scale_lr = dict(base_batch_size=256)
