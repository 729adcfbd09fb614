# Semi-supervised ImageNet-1k fine-tuning on 1% of the labels (the
# SimCLR / BYOL protocol as MMSelfSup benchmarks it): the whole network is
# fine-tuned (SyncBN), batch 256 (4 GPUs x 64), 20 epochs, SGD momentum 0.9,
# weight decay 5e-4, lr x0.2 at epochs 12 and 16.
#
# Label subset: `data/imagenet/meta/train_1percent.txt`, one
# "<relative image path> <class index>" line per image (the 12,811-image
# subset published with SimCLR, labelled).
#
# The protocol reports the best of a grid over the backbone lr
# {0.1, 0.01, 0.001} and the head lr multiplier {1, 10, 100}; this file is
# lr 0.1 / head x1, the others are
#   --cfg-options optim_wrapper.optimizer.lr=0.01 \
#       optim_wrapper.paramwise_cfg.custom_keys.head.lr_mult=100
# Pre-trained weights as in resnet50_8xb32-linear-steplr-100e_in1k.py:
#   --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/backbone.pth
_base_ = [
    'mmpretrain::_base_/models/resnet50.py',
    'mmpretrain::_base_/datasets/imagenet_bs32_pil_resize.py',
    '../../../_base_/default_runtime.py',
]

pretrained = 'work_dirs/pretrain_backbone.pth'  # set with --cfg-options
model = dict(
    backbone=dict(
        frozen_stages=-1,
        norm_cfg=dict(type='SyncBN', requires_grad=True),
        init_cfg=dict(type='Pretrained', checkpoint=pretrained,
                      prefix=None)))

train_dataloader = dict(
    batch_size=64,
    dataset=dict(ann_file='meta/train_1percent.txt', data_prefix='train'))

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=5e-4),
    paramwise_cfg=dict(custom_keys={'head': dict(lr_mult=1.)}))
param_scheduler = [
    dict(type='MultiStepLR', by_epoch=True, milestones=[12, 16], gamma=0.2)
]
train_cfg = dict(by_epoch=True, max_epochs=20, val_interval=5)
val_cfg = dict()
test_cfg = dict()

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=2))
auto_scale_lr = dict(base_batch_size=256)
