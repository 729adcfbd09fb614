# ODC, ResNet-50, ImageNet-1k, 8 GPUs x 64 = 512, 440 epochs: MMSelfSup's
# recipe (spec 1.3, 1.5, 1.7), ported to MMEngine / MMPretrain 1.x.
# Linear top-1 (MMSelfSup 0.x zoo, AvgPool): 53.43.
#   tools/dist_train.sh configs/odc/odc_resnet50_8xb64-steplr-440e_in1k.py 8
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
    dict(type='PackInputs'),  # keeps sample_idx (memory row)
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
    persistent_workers=True,
    # sampling with replacement, as the reference (`replace=True`)
    sampler=dict(type='ClusterSampler', replace=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, split='train',
                 pipeline=train_pipeline))

# ---------------------------------------------------------------- model
model = dict(
    type='ODC',
    with_sobel=False,
    data_preprocessor=data_preprocessor,
    backbone=dict(type='ResNet', depth=50, norm_cfg=dict(type='SyncBN')),
    neck=dict(type='ODCNeck', in_channels=2048, hid_channels=512,
              out_channels=256, with_avg_pool=True,
              norm_cfg=dict(type='SyncBN')),
    head=dict(type='LinearClsHead', num_classes=num_clusters,
              in_channels=256, loss=dict(type='CrossEntropyLoss')),
    # momentum weights the NEW feature (0.5 in both conventions)
    memory=dict(type='ClusterMemory', length=num_train, feat_dim=256,
                num_clusters=num_clusters, momentum=0.5, min_cluster=20,
                init='data'))

custom_hooks = [
    # initial clustering only (interval=None): k-means K=10000, no PCA,
    # L2-normalised neck features -> memory (bank, labels, centroids)
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
         clustering=dict(num_iters=20, pca_dim=-1, normalize=True),
         initial=True,
         interval=None,
         reweight=True,
         reweight_pow=0.5),
    dict(type='ClusterMemoryHook',
         centroids_update_interval=10,
         deal_with_small_clusters_interval=1,
         evaluate_interval=50,
         reweight=True,
         reweight_pow=0.5),
]

# -------------------------------------------------------------- schedule
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.06, momentum=0.9, weight_decay=1e-5),
    paramwise_cfg=dict(custom_keys={'head': dict(momentum=0.)}))
param_scheduler = [
    dict(type='MultiStepLR', by_epoch=True, milestones=[400], gamma=0.4)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=440)
auto_scale_lr = dict(base_batch_size=512)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=3))
