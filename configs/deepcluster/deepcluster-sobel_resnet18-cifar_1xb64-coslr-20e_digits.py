# DeepCluster (Sobel) on the embedded digits (4,000 train / 1,000 test,
# 32x32): the common digits setting (CIFAR ResNet-18 with 16 base channels,
# 2 input channels after Sobel, batch 64, 20-epoch cosine schedule, kNN
# evaluation), one view of the MoCo v2 digits augmentation.
# OUR SETTINGS (scaled from ImageNet): K = 100 clusters (10x the classes,
# as DeepCluster over-clusters), PCA-whitening to 32 dims, re-clustering
# every epoch, classifier re-initialised after each clustering, batches
# drawn uniformly over clusters (ClusterSampler).
#   python tools/train.py configs/deepcluster/deepcluster-sobel_resnet18-cifar_1xb64-coslr-20e_digits.py
_base_ = [
    '../_base_/models/resnet18_cifar_digits.py',
    '../_base_/datasets/digits_bs64.py',
    '../_base_/datasets/digits_knn.py',
    '../_base_/schedules/sgd_coslr_digits.py',
    '../_base_/default_runtime.py',
]
num_train = 4000
num_clusters = 100
train_dataloader = dict(
    sampler=dict(type='ClusterSampler', shuffle=True),
    dataset=dict(pipeline=[
        dict(type='MultiView', num_views=1,
             transforms=[{{_base_.view_pipeline}}]),
        dict(type='PackInputs'),
    ]))

model = dict(
    type='DeepCluster',
    memory=dict(type='LabelMemory', length=num_train,
                num_clusters=num_clusters),
    with_sobel=True,
    # the common digits backbone, with 2 input channels (Sobel responses)
    backbone=dict(type='ResNet_CIFAR', depth=18, in_channels=2,
                  stem_channels=16, base_channels=16,
                  norm_cfg=dict(type='BN'), zero_init_residual=False),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=num_clusters,
              in_channels={{_base_.backbone_out_channels}},
              loss=dict(type='CrossEntropyLoss')))

custom_hooks = [
    dict(type='OfflineClusterHook',
         extract_dataloader=dict(
             batch_size=256,
             num_workers=0,
             persistent_workers=False,
             sampler=dict(type='DefaultSampler', shuffle=False,
                          round_up=False),
             collate_fn=dict(type='default_collate'),
             dataset=dict(type='DigitsDataset', split='train',
                          pipeline=[dict(type='PackInputs')])),
         clustering=dict(num_iters=20, pca_dim=32, normalize=True),
         initial=True,
         interval=1,
         reset_head=True,
         uniform_sampling=True),
]
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'head': dict(momentum=0.)}))
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=2,
                    save_best='knn/top1', rule='greater'))
randomness = dict(seed=0)
