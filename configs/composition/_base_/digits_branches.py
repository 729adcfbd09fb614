# The three inter-instance branches at their digits settings, for the
# composition recipes of this folder (docs/composition.md). They are the
# settings of the method recipes on the digits (InterCLR's, CLD's MoCo v2
# form, BSIM's defaults; tests/test_configs/test_composition_configs.py
# holds them equal), attached as they are to every framework; a recipe
# takes its framework from the framework's own digits recipe and adds
# these. Variables only (no model / hooks of their own).

# InterCLR's inter-image branch (configs/interclr/..._digits.py): K = 20
# clusters of the 4,000 training digits, min_cluster 20, semi-hard pool
# 1,000 (25 % of the memory), 256 negatives, margin -0.5, memory momentum
# 1.0 (replace), online labels; the framework's loss weighted 0.75 and the
# branch 0.25. The memory's feat_dim is the framework's projection dim,
# set by each recipe.
inter_image_memory = dict(type='ClusterMemory', length=4000,
                          num_clusters=20, momentum=1.0, min_cluster=20,
                          init='data', online_labels=True)
inter_image_branch = dict(
    type='InterImageBranch',
    loss_weight=0.25,
    head=dict(type='MarginContrastiveHead',
              loss=dict(type='CrossEntropyLoss'), temperature=0.2,
              cos_margin=-0.5, arc_margin=None),
    neg_num=256,
    neg_sampling='semihard',
    semihard_neg_pool_num=1000,
    semieasy_neg_pool_num=1000)
inter_image_base_weight = 0.75
# the branch's hooks: the memory is filled by a clustering of the training
# set before training and kept by ClusterMemoryHook (centroids every 10
# iterations, small clusters every iteration)
inter_image_hooks = [
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

# CLD's group branch in its MoCo v2 form (configs/cld/cld-mocov2_..._digits
# .py): K = 32 groups per 64-sample batch, tau_G 0.4, lambda 0.25, 5
# k-means iterations; its own "NormMLP" group projection on the backbone
# features (-> 256 with BN -> 64, the recipe's CLDNeck without its instance
# projection), since the frameworks' necks have one output. The
# projection's in_channels are the backbone's, set by each recipe.
group_branch = dict(
    type='GroupBranch',
    num_groups=32,
    temperature=0.4,
    loss_weight=0.25,
    grouping='kmeans',
    num_iters=5,
    neck=dict(type='CLDNeck', hid_channels=256, out_channels=64,
              proj_type='normed', norm_cfg=dict(type='BN1d'),
              with_group=False))

# BSIM's mixture term (configs/bsim/README.md): the defaults, beta = 1.
mixture_branch = dict(
    type='MixtureBranch', loss_weight=1.0, mix_mode='both', p_mixup=0.5,
    alpha=1.0, pairing='reverse', mixed_view='a', symmetric_mix=False)
