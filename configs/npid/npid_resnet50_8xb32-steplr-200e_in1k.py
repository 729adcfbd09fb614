# NPID, ResNet-50, ImageNet-1k, 8 GPUs x 32 = 256, 200 epochs: MMSelfSup's
# recipe, ported to MMEngine / MMPretrain 1.x (configs/npid/README.md).
# Linear top-1 (MMSelfSup zoo): 58.3 (1.x) / 58.97 (0.x AvgPool).
#   tools/dist_train.sh configs/npid/npid_resnet50_8xb32-steplr-200e_in1k.py 8
# Data and schedule are kept here: MMPretrain 1.2 has no NPID, and none of
# its bases has NPID's one-view augmentation or its step schedule.
_base_ = ['../_base_/default_runtime.py']

# ----------------------------------------------------------------- data
dataset_type = 'ImageNet'
data_root = 'data/imagenet/'
num_train = 1281167
data_preprocessor = dict(
    type='SelfSupDataPreprocessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224, crop_ratio_range=(0.2, 1.),
         backend='pillow'),
    dict(type='RandomGrayscale', prob=0.2, keep_channels=True,
         channel_weights=(0.114, 0.587, 0.2989)),
    dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0.4,
         hue=0.4),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs'),  # keeps sample_idx (memory-bank row)
]
train_dataloader = dict(
    batch_size=32,
    num_workers=8,
    drop_last=True,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, split='train',
                 pipeline=train_pipeline))

# ---------------------------------------------------------------- model
model = dict(
    type='NPID',
    neg_num=65536,
    ensure_neg=False,
    data_preprocessor=data_preprocessor,
    backbone=dict(type='ResNet', depth=50, norm_cfg=dict(type='SyncBN')),
    neck=dict(type='LinearNeck', in_channels=2048, out_channels=128,
              gap_dim=2),
    head=dict(type='ContrastiveHead', loss=dict(type='CrossEntropyLoss'),
              temperature=0.07),
    # momentum weights the NEW feature (0.5, the same in both conventions)
    memory=dict(type='FeatureMemory', length=num_train, feat_dim=128,
                momentum=0.5))

# -------------------------------------------------------------- schedule
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.03, momentum=0.9, weight_decay=1e-4))
param_scheduler = [
    dict(type='MultiStepLR', by_epoch=True, milestones=[120, 160], gamma=0.1)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=200)
auto_scale_lr = dict(base_batch_size=256)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=3))
