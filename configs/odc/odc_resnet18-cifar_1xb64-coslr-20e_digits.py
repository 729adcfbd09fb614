# ODC on the embedded digits (4,000 train / 1,000 test, 32x32): the common
# digits setting (CIFAR ResNet-18 with 16 base channels, batch 64, 20-epoch
# cosine schedule, kNN evaluation), one view of the MoCo v2 digits
# augmentation. OUR SETTINGS (scaled from ImageNet): K = 100 clusters
# (40 images per cluster), min_cluster = 10, ODCNeck 128-256-64, memory
# momentum 0.5 (weight of the new feature), centroids every 10 iterations.
#   python tools/train.py configs/odc/odc_resnet18-cifar_1xb64-coslr-20e_digits.py
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
    sampler=dict(type='ClusterSampler', replace=True),
    dataset=dict(pipeline=[
        dict(type='MultiView', num_views=1,
             transforms=[{{_base_.view_pipeline}}]),
        dict(type='PackInputs'),
    ]))

model = dict(
    type='ODC',
    with_sobel=False,
    backbone={{_base_.backbone}},
    neck=dict(type='ODCNeck', in_channels={{_base_.backbone_out_channels}},
              hid_channels=256, out_channels=64, with_avg_pool=True),
    head=dict(type='LinearClsHead', num_classes=num_clusters,
              in_channels=64, loss=dict(type='CrossEntropyLoss')),
    memory=dict(type='ClusterMemory', length=num_train, feat_dim=64,
                num_clusters=num_clusters, momentum=0.5, min_cluster=10,
                init='data'),
    # loss weights (1 / cluster size) ** 0.5, from the current labels
    reweight_pow=0.5)

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
         clustering=dict(num_iters=20, pca_dim=-1, normalize=True),
         initial=True,
         interval=None),
    dict(type='ClusterMemoryHook',
         centroids_update_interval=10,
         deal_with_small_clusters_interval=1,
         evaluate_interval=50),
]
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'head': dict(momentum=0.)}))
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=2,
                    save_best='knn/top1', rule='greater'))
randomness = dict(seed=0)
