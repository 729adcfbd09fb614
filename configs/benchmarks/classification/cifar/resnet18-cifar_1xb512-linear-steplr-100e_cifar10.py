# CIFAR-10 linear probe, the ContrastiveCrop protocol (xyupeng/ContrastiveCrop
# configs/linear): frozen ResNet-18 (CIFAR stem), pooled 512-d feature, one
# linear layer; SGD lr 10, momentum 0.9, no weight decay, batch 512,
# 100 epochs, lr x0.1 at epochs 60 and 80; RandomResizedCrop 32 + horizontal
# flip.
#
# Pre-trained weights:
#   --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/backbone.pth
_base_ = './resnet18-cifar_1xb256-linear-steplr-100e_cifar10.py'

train_pipeline = [
    dict(type='RandomResizedCrop', scale=32, backend='pillow'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
train_dataloader = dict(batch_size=512, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(batch_size=512)
test_dataloader = val_dataloader

optim_wrapper = dict(optimizer=dict(lr=10.))
param_scheduler = [
    dict(type='MultiStepLR', by_epoch=True, milestones=[60, 80], gamma=0.1)
]
