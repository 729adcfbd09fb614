# ContrastiveCrop + byol (ResNet-18, CIFAR stem), authors' small recipe:
# 500 epochs, batch 512, alpha 0.1 (paper: 0.6), warm-up 100, boxes
# refreshed after epochs 100/200/300/400, threshold 0.1.
# RCrop baseline of the authors: --cfg-options custom_hooks.0.warmup_epochs=500
_base_ = [
    './_base_/models/byol_resnet18-cifar.py',
    './_base_/datasets/cifar100_bs512_ccrop.py',
    './_base_/schedules/sgd-coslr-500e_small.py',
    '../_base_/default_runtime.py',
]

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='CheckpointHook', interval=50, max_keep_ckpts=3))

custom_hooks = [
    dict(type='ContrastiveCropHook', warmup_epochs=100, interval=100,
         threshold=0.1, pipeline={{_base_.ccrop_test_pipeline}},
         num_workers=4),
]
