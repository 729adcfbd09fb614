# ODC, ResNet-50, ImageNet-1k, 8 GPUs x 64 = 512, 440 epochs: MMSelfSup's
# recipe, ported to MMEngine / MMPretrain 1.x (configs/odc/README.md).
# Data: DeepCluster's ImageNet base (no MMPretrain base has it); the step
# schedule has no MMPretrain base either.
# Linear top-1 (MMSelfSup 0.x zoo, AvgPool): 53.43.
#   tools/dist_train.sh configs/odc/odc_resnet50_8xb64-steplr-440e_in1k.py 8
_base_ = [
    '../_base_/datasets/imagenet_bs64_deepcluster.py',
    '../_base_/default_runtime.py',
]

# ----------------------------------------------------------------- data
num_train = 1281167
num_clusters = 10000
# sampling with replacement, as the reference (`replace=True`)
train_dataloader = dict(
    sampler=dict(_delete_=True, type='ClusterSampler', replace=True))

# ---------------------------------------------------------------- model
model = dict(
    type='ODC',
    with_sobel=False,
    data_preprocessor=_base_.data_preprocessor,
    backbone=dict(type='ResNet', depth=50, norm_cfg=dict(type='SyncBN')),
    neck=dict(type='ODCNeck', in_channels=2048, hid_channels=512,
              out_channels=256, with_avg_pool=True,
              norm_cfg=dict(type='SyncBN')),
    head=dict(type='LinearClsHead', num_classes=num_clusters,
              in_channels=256, loss=dict(type='CrossEntropyLoss')),
    # momentum weights the NEW feature (0.5 in both conventions)
    memory=dict(type='ClusterMemory', length=num_train, feat_dim=256,
                num_clusters=num_clusters, momentum=0.5, min_cluster=20,
                init='data'),
    # loss weights (1 / cluster size) ** 0.5, from the current labels
    reweight_pow=0.5)

custom_hooks = [
    # initial clustering only (interval=None): k-means K=10000, no PCA,
    # L2-normalised neck features -> memory (bank, labels, centroids)
    dict(type='OfflineClusterHook',
         extract_dataloader=_base_.extract_dataloader,
         clustering=dict(num_iters=20, pca_dim=-1, normalize=True),
         initial=True,
         interval=None),
    dict(type='ClusterMemoryHook',
         centroids_update_interval=10,
         deal_with_small_clusters_interval=1,
         evaluate_interval=50),
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
