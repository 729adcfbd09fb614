# InterCLR (MoCo v2 base), ResNet-50, ImageNet-1k, 8 GPUs x 32 = 256,
# 200 epochs.
# The authors' recipe (MMSelfSup 0.x configs/selfsup/interclr), ported to
# MMEngine / MMPretrain 1.x; see configs/interclr/README.md.
#   tools/dist_train.sh configs/interclr/interclr-moco_resnet50_8xb32-coslr-200e_in1k.py 8
# Data and schedule are MMPretrain's MoCo v2 ones (same augmentation,
# preprocessor, batch, SGD lr 0.03 / wd 1e-4, cosine over 200 epochs); the
# training set is sampled with replacement, as the reference (`replace=True`).
# Ablations (--cfg-options):
#   labels   : model.memory.online_labels=False custom_hooks.0.interval=10
#              (offline labels, re-clustered every 10 epochs) and drop
#              custom_hooks[1] (ClusterMemoryHook: online labels only)
#   warm-up  : add dict(type='ModelParamScheduleHook', end=E,
#              params=dict(loss_intra=1., loss_inter=0.))
#   sampling : model.neg_sampling=hard|random|semieasy|semihard
#   margin   : model.inter_head.cos_margin=None model.inter_head.arc_margin=0.5
#              (intra: model.head.cos_margin=... / model.head.arc_margin=...)
#   neck     : model.share_neck=False
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs32_mocov2.py',
    'mmpretrain::_base_/schedules/imagenet_sgd_coslr_200e.py',
    '../_base_/default_runtime.py',
]

# ----------------------------------------------------------------- data
# each epoch draws len(dataset) indices uniformly with replacement
# collate_fn restated without the `_scope_` tag MMEngine adds to dicts
# inherited from `mmpretrain::` bases (TypeError at the first batch)
train_dataloader = dict(
    collate_fn=dict(_delete_=True, type='default_collate'),
    sampler=dict(_delete_=True, type='ClusterSampler', replace=True))
# clustering features: Resize 256 -> CenterCrop 224 (reference extractor)
extract_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short', backend='pillow'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]

# ---------------------------------------------------------------- model
num_train = 1281167
num_clusters = 10000
model = dict(
    type='InterCLRMoCo',
    data_preprocessor=_base_.data_preprocessor,
    queue_len=65536,
    feat_dim=128,
    momentum=0.001,  # MMEngine convention (weight of the new value): m=0.999
    backbone=dict(type='ResNet', depth=50, norm_cfg=dict(type='BN'),
                  zero_init_residual=False),
    neck=dict(type='MoCoV2Neck', in_channels=2048, hid_channels=2048,
              out_channels=128, with_avg_pool=True),
    # intra branch: no margin (reference default)
    head=dict(type='MarginContrastiveHead',
              loss=dict(type='CrossEntropyLoss'), temperature=0.2,
              cos_margin=None, arc_margin=None),
    # inter branch: cosine margin -0.5 (positive logit s -> s + 0.5)
    inter_head=dict(type='MarginContrastiveHead',
                    loss=dict(type='CrossEntropyLoss'), temperature=0.2,
                    cos_margin=-0.5, arc_margin=None),
    memory=dict(
        type='ClusterMemory',
        length=num_train,
        feat_dim=128,
        num_clusters=num_clusters,
        momentum=1.0,  # weight of the new key: 1.0 = replace (reference)
        min_cluster=20,
        init='data',
        online_labels=True),
    neg_num=16384,
    neg_sampling='semihard',
    semihard_neg_pool_num=128000,
    semieasy_neg_pool_num=128000,
    intra_loss_weight=0.75,
    inter_loss_weight=0.25,
    share_neck=True)

custom_hooks = [
    # initial clustering of the training set into the memory (bank, labels,
    # centroids); interval=None: online labels are never re-clustered
    dict(
        type='OfflineClusterHook',
        extract_dataloader=dict(
            batch_size=256,
            num_workers=8,
            persistent_workers=False,
            sampler=dict(type='DefaultSampler', shuffle=False),
            collate_fn=dict(type='default_collate'),
            dataset=dict(type=_base_.dataset_type,
                         data_root=_base_.data_root, split='train',
                         pipeline=extract_pipeline)),
        # k-means: 20 iterations on L2-normalised features, no PCA
        clustering=dict(num_iters=20, normalize=True, pca_dim=-1),
        initial=True,
        interval=None),
    # online labels: centroids, small clusters, cluster-size log
    dict(
        type='ClusterMemoryHook',
        centroids_update_interval=10,  # iterations
        deal_with_small_clusters_interval=1,  # iterations
        evaluate_interval=50),  # iterations
]

# ------------------------------------------------------------- schedule
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=3))
auto_scale_lr = dict(base_batch_size=256)
