# InterCLR (MoCo v2 base) on the embedded digits (4,000 train / 1,000 test,
# 32x32): the demo recipe, compared with its base algorithm
# configs/mocov2/mocov2_resnet18-cifar_1xb64-coslr-20e_digits.py, which it
# inherits: same backbone (CIFAR ResNet-18, 16 base channels), neck, queue,
# augmentation, batch 64, 20-epoch cosine schedule and kNN evaluation.
# OUR SETTINGS (scaled from ImageNet, configs/interclr/README.md): K = 20
# clusters (200 images per cluster; chosen on the validation split among
# 10 / 20 / 40, docs/digits.md), min_cluster = 20, semi-hard pool 1,000
# (25% of the bank), 256 negatives; margin -0.5, loss weights 0.75 / 0.25,
# memory momentum 1.0 (replace), centroids every 10 iterations.
#   python tools/train.py configs/interclr/interclr-moco_resnet18-cifar_1xb64-coslr-20e_digits.py
# Ablations: --cfg-options model.neg_sampling=hard|random|semieasy
#   model.inter_head.cos_margin=None  model.inter_head.arc_margin=0.5
#   model.share_neck=False
# Offline labels: model.memory.online_labels=False, custom_hooks.0.interval=5
# and no ClusterMemoryHook; a warm-up: a ModelParamScheduleHook (see the
# ImageNet recipe).
_base_ = ['../mocov2/mocov2_resnet18-cifar_1xb64-coslr-20e_digits.py']

num_train = 4000
model = dict(
    type='InterCLRMoCo',
    head=dict(type='MarginContrastiveHead', cos_margin=None,
              arc_margin=None),
    inter_head=dict(type='MarginContrastiveHead',
                    loss=dict(type='CrossEntropyLoss'), temperature=0.2,
                    cos_margin=-0.5, arc_margin=None),
    memory=dict(type='ClusterMemory', length=num_train, feat_dim=64,
                num_clusters=20, momentum=1.0, min_cluster=20, init='data',
                online_labels=True),
    neg_num=256,
    neg_sampling='semihard',
    semihard_neg_pool_num=1000,
    semieasy_neg_pool_num=1000,
    intra_loss_weight=0.75,
    inter_loss_weight=0.25,
    share_neck=True)

custom_hooks = [
    dict(type='OfflineClusterHook',
         extract_dataloader=dict(
             batch_size=256,
             num_workers=0,
             persistent_workers=False,
             sampler=dict(type='DefaultSampler', shuffle=False),
             collate_fn=dict(type='default_collate'),
             dataset=dict(type='DigitsDataset', split='train',
                          pipeline=[dict(type='PackInputs')])),
         clustering=dict(num_iters=20, normalize=True, pca_dim=-1),
         initial=True,
         interval=None),
    dict(type='ClusterMemoryHook',
         centroids_update_interval=10,
         deal_with_small_clusters_interval=1,
         evaluate_interval=50),
]
