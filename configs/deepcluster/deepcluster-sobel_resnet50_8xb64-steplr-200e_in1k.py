# DeepCluster (Sobel), ResNet-50, ImageNet-1k, 8 GPUs x 64 = 512, 200 epochs:
# MMSelfSup's recipe, ported to MMEngine / MMPretrain
# (configs/deepcluster/README.md). Data: configs/_base_/datasets/
# imagenet_bs64_deepcluster.py (no MMPretrain base has it).
# Linear top-1 (MMSelfSup 0.x zoo, AvgPool): 46.92.
#   tools/dist_train.sh configs/deepcluster/deepcluster-sobel_resnet50_8xb64-steplr-200e_in1k.py 8
# Every epoch: k-means (K=10000, PCA-whitening to 256 dims, L2 norm) of the
# pooled features of the training set, new pseudo-labels (model buffer),
# classifier re-initialised, batches drawn uniformly over clusters
# (ClusterSampler, `unif_sampling=True` in the reference).
_base_ = [
    '../_base_/datasets/imagenet_bs64_deepcluster.py',
    '../_base_/default_runtime.py',
]

num_train = 1281167
num_clusters = 10000

# ---------------------------------------------------------------- model
model = dict(
    type='DeepCluster',
    memory=dict(type='LabelMemory', length=num_train,
                num_clusters=num_clusters),
    with_sobel=True,
    data_preprocessor=_base_.data_preprocessor,
    backbone=dict(type='ResNet', depth=50, in_channels=2,
                  norm_cfg=dict(type='BN')),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=num_clusters,
              in_channels=2048, loss=dict(type='CrossEntropyLoss')))

custom_hooks = [
    dict(type='OfflineClusterHook',
         extract_dataloader=_base_.extract_dataloader,
         clustering=dict(num_iters=20, pca_dim=256, normalize=True),
         initial=True,
         interval=1,
         reset_head=True,
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
