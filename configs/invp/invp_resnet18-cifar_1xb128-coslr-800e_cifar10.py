# InvP on CIFAR-10, CIFAR ResNet-18 (3x3 stem, no max-pool): the authors'
# README command (`--network resnet18_cifar --t 0.2 --cos --nonlinearhead 1
# --weight_decay 5e-4 --n_pos 20`; defaults otherwise: 800 epochs, batch
# 128, lr 0.03, n_background 4096, diffusion_layer 3 ("best for cifar10"),
# K_nearst 4, m 0.5, lam_inv 0.6, exclusive 1, binary ramp-up at 30).
# Authors' CIFAR augmentation: RandomResizedCrop(32, 0.2-1), ColorJitter
# (0.4, 0.4, 0.4, 0.4) ALWAYS applied, grayscale p=0.2, NO horizontal flip.
_base_ = ['../_base_/datasets/cifar10.py', '../_base_/default_runtime.py']

data_len = 50000

model = dict(
    type='InvP',
    # bank + kNN table; momentum weights the NEW feature: authors' m=0.5
    # -> 0.5
    memory=dict(type='NeighbourMemory', length=data_len, feat_dim=128,
                momentum=0.5, init='uniform', num_neighbours=4),
    lambda_inv=0.6,
    ramp_up='binary',
    ramp_epochs=30,
    data_preprocessor=_base_.data_preprocessor,
    backbone=dict(
        type='ResNet_CIFAR',
        depth=18,
        norm_cfg=dict(type='BN'),
        zero_init_residual=False),
    neck=dict(
        type='MoCoV2Neck',
        in_channels=512,
        hid_channels=512,
        out_channels=128,
        with_avg_pool=True),
    loss=dict(
        type='InvPLoss',
        temperature=0.2,
        n_background=4096,
        diffusion_layer=3,
        n_pos=20,
        hard_positive=True,
        denominator='exclusive',
        propagation='concat'))

# the authors' CIFAR augmentation, one view; RGB grayscale weights (CIFAR
# arrays are RGB)
view_pipeline = [
    dict(type='RandomResizedCrop', scale=32, crop_ratio_range=(0.2, 1.),
         backend='pillow'),
    dict(type='ColorJitterRGB', brightness=0.4, contrast=0.4, saturation=0.4,
         hue=0.4),
    dict(type='RandomGrayscale', prob=0.2, keep_channels=True,
         channel_weights=(0.2989, 0.587, 0.114)),
]
train_pipeline = [
    dict(type='MultiView', num_views=1, transforms=[view_pipeline]),
    dict(type='PackInputs'),
]
train_dataloader = dict(batch_size=128, dataset=dict(pipeline=train_pipeline))

# weighted-kNN monitor over the memory bank every epoch (K=200, sigma=0.07)
val_dataloader = dict(
    batch_size=256,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type=_base_.dataset_type, data_root=_base_.data_root,
                 split='test', pipeline=_base_.test_pipeline))
val_evaluator = dict(type='KNNAccuracy', topk=(1, 5))
val_cfg = dict(type='MemoryBankKNNValLoop', k=200, sigma=0.07)
test_dataloader = val_dataloader
test_evaluator = val_evaluator
test_cfg = dict(
    type='MemoryBankKNNTestLoop', k=200, sigma=0.07,
    label_dataset=dict(type=_base_.dataset_type, data_root=_base_.data_root,
                       split='train', pipeline=[]))

max_epochs = 800
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.03, momentum=0.9, weight_decay=5e-4))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=max_epochs, by_epoch=True,
         begin=0, end=max_epochs)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs,
                 val_interval=1)
auto_scale_lr = dict(base_batch_size=128)

# replicated bank/table are updated from all-gathered samples on every
# rank: DDP must not broadcast buffers (a whole bank) every iteration
model_wrapper_cfg = dict(type='MMDistributedDataParallel',
                         broadcast_buffers=False)

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', interval=20, max_keep_ckpts=3,
                    save_best='knn/top1', rule='greater'))
