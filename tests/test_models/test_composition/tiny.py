"""Tiny frameworks and branches shared by the composition tests: every
framework's projection is 8-d, the backbone gives 32 channels."""
import copy

import torch
from mmpretrain.structures import DataSample

BB = dict(type='ResNet_CIFAR', depth=18, stem_channels=4, base_channels=4,
          norm_cfg=dict(type='BN'), zero_init_residual=False)
CE = dict(type='CrossEntropyLoss')
PRE = dict(type='SelfSupDataPreprocessor', mean=[127.5] * 3,
           std=[127.5] * 3, to_rgb=False)
MOCO_NECK = dict(type='MoCoV2Neck', in_channels=32, hid_channels=16,
                 out_channels=8, with_avg_pool=True)
CLD_NECK = dict(type='CLDNeck', in_channels=32, hid_channels=16,
                out_channels=8, proj_type='normed')
LATENT = dict(
    neck=dict(type='NonLinearNeck', in_channels=32, hid_channels=16,
              out_channels=8, with_avg_pool=True),
    head=dict(type='LatentPredictHead',
              loss=dict(type='CosineSimilarityLoss'),
              predictor=dict(type='NonLinearNeck', in_channels=8,
                             hid_channels=16, out_channels=8,
                             with_avg_pool=False)))
N = 24  # data-set length

#: framework name -> its config (without the backbone)
FRAMEWORKS = dict(
    MoCo=dict(neck=MOCO_NECK, queue_len=8, feat_dim=8, momentum=0.1,
              head=dict(type='ContrastiveHead', loss=CE, temperature=0.2)),
    SimCLR=dict(neck=dict(type='NonLinearNeck', in_channels=32,
                          hid_channels=16, out_channels=8),
                head=dict(type='ContrastiveHead', loss=CE,
                          temperature=0.5)),
    BYOL=dict(base_momentum=0.01, **LATENT),
    SimSiam=dict(**LATENT),
    RingMoCo=dict(neck=MOCO_NECK, queue_len=10, feat_dim=8, momentum=0.1,
                  head=dict(type='ContrastiveHead', loss=CE,
                            temperature=0.2)),
    NPID=dict(neck=dict(type='LinearNeck', in_channels=32, out_channels=8,
                        gap_dim=2),
              head=dict(type='ContrastiveHead', loss=CE, temperature=0.1),
              memory=dict(type='FeatureMemory', length=N, feat_dim=8),
              neg_num=6),
)


def framework(name, **kw):
    cfg = copy.deepcopy(FRAMEWORKS[name])
    cfg.update(type=name, backbone=dict(BB), **kw)
    return cfg


def inter_branch(**kw):
    cfg = dict(type='InterImageBranch',
               memory=dict(type='ClusterMemory', length=N, feat_dim=8,
                           num_clusters=3, momentum=1.0, min_cluster=2),
               neg_num=5, semihard_neg_pool_num=10, sampling_seed=0)
    cfg.update(kw)
    return cfg


def group_branch(**kw):
    cfg = dict(type='GroupBranch', num_groups=2, temperature=0.4,
               loss_weight=0.5,
               neck=dict(type='CLDNeck', in_channels=32, hid_channels=16,
                         out_channels=8, proj_type='normed',
                         with_group=False))
    cfg.update(kw)
    return cfg


def mixture_branch(**kw):
    return dict(type='MixtureBranch', mix_mode='mixup', **kw)


BRANCHES = dict(inter=inter_branch, group=group_branch,
                mixture=mixture_branch)


def composed(name, *branches, **kw):
    """``ComposedSSL`` over framework ``name`` with ``branches`` (names of
    BRANCHES or configs)."""
    return dict(type='ComposedSSL', base=framework(name),
                branches=[BRANCHES[b]() if isinstance(b, str) else b
                          for b in branches], **kw)


def fill_memories(model, seed=1):
    """Initialise every pseudo-label memory of ``model`` (what
    OfflineClusterHook does before training)."""
    from mmssl_ext.models.memories import ClusterMemory, find_memories
    g = torch.Generator().manual_seed(seed)
    for _, memory in find_memories(model, ClusterMemory):
        memory.init_memory(
            torch.randn(memory.length, memory.feat_dim, generator=g),
            torch.arange(memory.length) % memory.num_clusters)


def batch(idx, n_views=2, size=16, seed=0, labels=False):
    g = torch.Generator().manual_seed(seed)
    views = [torch.randn(len(idx), 3, size, size, generator=g)
             for _ in range(n_views)]
    samples = []
    for i in idx:
        s = DataSample(metainfo=dict(sample_idx=int(i)))
        if labels:
            s.set_gt_label(int(i) % 3)
        samples.append(s)
    return views, samples
