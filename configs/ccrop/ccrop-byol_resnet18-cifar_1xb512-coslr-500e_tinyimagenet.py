# ContrastiveCrop + BYOL (ResNet-18, CIFAR stem) on Tiny-ImageNet-200, the
# authors' small-data settings: 500 epochs, batch 512, alpha 0.1 (paper: 0.6),
# warm-up 100, boxes refreshed after epochs 100/200/300/400, threshold 0.1
# (configs/ccrop/README.md).
# The authors released this data set's config for SimCLR only
# (configs/small/{stl10,tiny200}/simclr_ccrop.py): this one is ours, their
# SimCLR data settings with the BYOL model of their CIFAR configs.
# RCrop baseline of the authors: --cfg-options custom_hooks.0.warmup_epochs=500
_base_ = [
    '../_base_/models/byol_resnet18_cifar_ccrop.py',
    '../_base_/datasets/tinyimagenet.py',
    '../_base_/schedules/sgd_coslr_500e_ccrop.py',
    '../_base_/default_runtime.py',
]

# ContrastiveCrop with the arguments of the data set's RandomResizedCrop; the
# data set is wrapped so that the crop reads each image's box
view_pipeline = [
    dict(_base_.view_pipeline[0], type='ContrastiveCrop', alpha=0.1),
    *_base_.view_pipeline[1:],
]
train_pipeline = [
    *_base_.load_pipeline,
    dict(type='MultiView', num_views=2, transforms=[view_pipeline]),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='ContrastiveCropDataset',
        dataset=dict(_base_.train_dataloader.dataset,
                     pipeline=train_pipeline)))

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='CheckpointHook', interval=50, max_keep_ckpts=3))

# the box refresh runs the data set's test pipeline (native size)
custom_hooks = [
    dict(type='ContrastiveCropHook', warmup_epochs=100, interval=100,
         threshold=0.1, pipeline=_base_.test_pipeline, num_workers=4),
]
