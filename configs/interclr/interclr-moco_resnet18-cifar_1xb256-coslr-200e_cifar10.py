# InterCLR (MoCo v2 base), CIFAR ResNet-18 stem, CIFAR-10, 1 GPU x 256,
# 200 epochs.
# OUR SETTINGS, NOT THE AUTHORS': InterCLR published no CIFAR recipe. These
# scale the ImageNet recipe to 50,000 images (configs/interclr/README.md):
#   * K = 400 clusters (N/K ~ 128 images per cluster, as 1.28M/10k on
#     ImageNet); min_cluster = 10;
#   * semi-hard pool 5,000 (~10% of N, as 128k/1.28M), 1,024 negatives
#     (pool:negatives ~ 5:1; ImageNet 8:1), queue 4,096;
#   * margin -0.5, loss weights 0.75 / 0.25, tau 0.2, centroids every 10 it.;
#   * SGD lr 0.03 (batch 256), wd 5e-4, cosine; key momentum m = 0.99.
# Ablation switches as in the ImageNet recipe (--cfg-options
# model.neg_sampling=hard, model.inter_head..., offline labels).
_base_ = ['../_base_/datasets/cifar10.py', '../_base_/default_runtime.py']

num_train = 50000
# MoCo v2 augmentation at 32 px without blur, flip last (the ImageNet
# recipe's order); RGB grayscale weights (CIFAR arrays are RGB)
view_pipeline = [
    dict(type='RandomResizedCrop', scale=32, crop_ratio_range=(0.2, 1.),
         backend='pillow'),
    dict(type='RandomApply',
         transforms=[dict(type='ColorJitterRGB', brightness=0.4, contrast=0.4,
                          saturation=0.4, hue=0.1)],
         prob=0.8),
    dict(type='RandomGrayscale', prob=0.2, keep_channels=True,
         channel_weights=(0.2989, 0.587, 0.114)),
    dict(type='RandomFlip', prob=0.5),
]
train_pipeline = [
    dict(type='MultiView', num_views=2, transforms=[view_pipeline]),
    dict(type='PackInputs'),
]
train_dataloader = dict(batch_size=256, dataset=dict(pipeline=train_pipeline))
# clustering features: every training image once, no augmentation
extract_dataloader = dict(
    batch_size=512,
    num_workers=4,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type=_base_.dataset_type, data_root=_base_.data_root,
                 split='train', pipeline=_base_.test_pipeline))

model = dict(
    type='InterCLRMoCo',
    data_preprocessor=_base_.data_preprocessor,
    queue_len=4096,
    feat_dim=128,
    momentum=0.01,  # MMEngine convention (weight of the new value): m=0.99
    backbone=dict(type='ResNet_CIFAR', depth=18, norm_cfg=dict(type='BN'),
                  zero_init_residual=False),
    neck=dict(type='MoCoV2Neck', in_channels=512, hid_channels=512,
              out_channels=128, with_avg_pool=True),
    head=dict(type='MarginContrastiveHead',
              loss=dict(type='CrossEntropyLoss'), temperature=0.2,
              cos_margin=None, arc_margin=None),
    inter_head=dict(type='MarginContrastiveHead',
                    loss=dict(type='CrossEntropyLoss'), temperature=0.2,
                    cos_margin=-0.5, arc_margin=None),
    memory=dict(type='ClusterMemory', length=num_train, feat_dim=128,
                num_clusters=400, momentum=1.0, min_cluster=10,
                init='data', online_labels=True),
    neg_num=1024,
    neg_sampling='semihard',
    semihard_neg_pool_num=5000,
    semieasy_neg_pool_num=5000,
    intra_loss_weight=0.75,
    inter_loss_weight=0.25,
    share_neck=True)

custom_hooks = [
    dict(type='OfflineClusterHook',
         extract_dataloader=extract_dataloader,
         clustering=dict(num_iters=20, normalize=True, pca_dim=-1),
         initial=True,
         interval=None),
    dict(type='ClusterMemoryHook',
         centroids_update_interval=10,
         deal_with_small_clusters_interval=1,
         evaluate_interval=50),
]

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.03, weight_decay=5e-4, momentum=0.9))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=200, by_epoch=True, begin=0,
         end=200, convert_to_iter_based=True)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=200)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=3))
auto_scale_lr = dict(base_batch_size=256)
