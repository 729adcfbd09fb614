# DeepCluster (Sobel), ResNet-50, ImageNet-1k, 8 GPUs x 64 = 512, 200 epochs:
# MMSelfSup's recipe (spec 1.4, 1.6, 1.7), ported to MMEngine / MMPretrain.
# Linear top-1 (MMSelfSup 0.x zoo, AvgPool): 46.92.
#   tools/dist_train.sh configs/deepcluster/deepcluster-sobel_resnet50_8xb64-steplr-200e_in1k.py 8
# Every epoch: k-means (K=10000, PCA-whitening to 256 dims, L2 norm) of the
# pooled features of the training set, new pseudo-labels (model buffer),
# classifier re-initialised, batches drawn uniformly over clusters
# (ClusterSampler, `unif_sampling=True` in the reference).
_base_ = ['../_base_/default_runtime.py']

# ----------------------------------------------------------------- data
dataset_type = 'ImageNet'
data_root = 'data/imagenet/'
num_train = 1281167
num_clusters = 10000
data_preprocessor = dict(
    type='SelfSupDataPreprocessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224, backend='pillow'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='NumpyToPIL', to_rgb=True),
    dict(type='torchvision/RandomRotation', degrees=2),
    dict(type='PILToNumpy', to_bgr=True),
    dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=1.0,
         hue=0.5),
    dict(type='RandomGrayscale', prob=0.2, keep_channels=True,
         channel_weights=(0.114, 0.587, 0.2989)),
    dict(type='PackInputs'),  # keeps sample_idx (pseudo-label row)
]
extract_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short', backend='pillow'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=64,
    num_workers=8,
    drop_last=True,
    # safe: pseudo-labels live in the model, not in the workers' data set
    persistent_workers=True,
    sampler=dict(type='ClusterSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, split='train',
                 pipeline=train_pipeline))

# ---------------------------------------------------------------- model
model = dict(
    type='DeepCluster',
    num_clusters=num_clusters,
    length=num_train,
    with_sobel=True,
    data_preprocessor=data_preprocessor,
    backbone=dict(type='ResNet', depth=50, in_channels=2,
                  norm_cfg=dict(type='BN')),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=num_clusters,
              in_channels=2048, loss=dict(type='CrossEntropyLoss')))

custom_hooks = [
    dict(type='OfflineClusterHook',
         extract_dataloader=dict(
             batch_size=128,
             num_workers=8,
             persistent_workers=False,
             sampler=dict(type='DefaultSampler', shuffle=False,
                          round_up=False),
             collate_fn=dict(type='default_collate'),
             dataset=dict(type=dataset_type, data_root=data_root,
                          split='train', pipeline=extract_pipeline)),
         clustering=dict(num_iters=20, pca_dim=256, normalize=True),
         initial=True,
         interval=1,
         reset_head=True,
         reweight=False,
         uniform_sampling=True),
]

# -------------------------------------------------------------- schedule
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-5),
    paramwise_cfg=dict(custom_keys={'head': dict(momentum=0.)}))
param_scheduler = [
    dict(type='MultiStepLR', by_epoch=True, milestones=[400], gamma=0.4)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=200)
auto_scale_lr = dict(base_batch_size=512)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=3))
