"""InterCLR: intra- plus inter-image invariance learning (MoCo v2 base).

Xie, Zhan, Liu, Ong, Loy. "Delving into Inter-Image Invariance for
Unsupervised Visual Representations", IJCV 2022 (arXiv 2008.11702).
The reference implementation is MMSelfSup 0.x (``InterCLRMoCo``,
``InterCLRMemory``, ``InterCLRHook``); this is an MMEngine port that keeps
its rules and defaults (see configs/interclr/README.md) and changes its
mechanics: replicated memory updated from all-gathered ``(idx, key)`` pairs
(no per-iteration bank broadcast), chunked similarity search on the model's
device, vectorised positive sampling, every piece of state in the
checkpoint.

``InterCLRMoCo`` is a fixed composition: :class:`RingMoCo` (the intra-image
term) plus one :class:`~mmssl_ext.models.interclr.InterImageBranch`; the
same branch goes on any other framework through ``ComposedSSL``.
"""
import copy
from typing import Optional, Union

from mmssl_ext.registry import MODELS
from ..algorithms.composed import Composition, check_weight
from ..algorithms.ring_moco import RingMoCo


@MODELS.register_module()
class InterCLRMoCo(Composition, RingMoCo):
    """InterCLR: MoCo v2 (:class:`RingMoCo`) plus the inter-image branch.

    Per iteration, with two views ``x1, x2`` and data-set indices ``idx``:

    * **intra** (MoCo v2): ``q = normalize(neck(backbone(x1)))``,
      ``k = normalize(encoder_k(x2))``;
      ``L_intra = CE([q.k, q.Queue] / tau, 0)`` through ``head`` (a
      :class:`MarginContrastiveHead` gives the optional intra margins).
    * **inter** (:class:`~mmssl_ext.models.interclr.InterImageBranch`):
      with the pseudo-label ``y = label_bank[idx]``, one positive drawn
      uniformly from ``{j: label_bank[j] == y}`` (possibly the sample
      itself) and ``neg_num`` negatives drawn by ``neg_sampling``
      (same-label draws rejected), ``L_inter = CE([m(q.bank[p]),
      q.bank[negs]] / tau, 0)`` through ``inter_head`` (cosine margin -0.5
      by default: ``m(s) = s + 0.5``). The query is ``q`` (``share_neck``)
      or the output of a separate copy of ``neck``.
    * ``loss_intra = intra_loss_weight * L_intra`` (0.75),
      ``loss_inter = inter_loss_weight * L_inter`` (0.25).
    * then the keys enter the queue, and the memory is updated with the
      momentum-encoder keys of the inter branch:
      ``bank[idx] = normalize((1-mu) bank[idx] + mu k)`` (``mu =
      memory.momentum``, 1.0 = replace); with online labels
      (``memory.online_labels=True``, InterCLR's default) also
      ``label_bank[idx] = argmax_c centroids_c . bank[idx]``, logged as
      ``change_ratio``.

    The hooks maintain the memory, by composition:
    :class:`~mmssl_ext.engine.hooks.OfflineClusterHook` fills it before
    training (features + k-means labels + centroids) and, for offline labels,
    re-clusters every ``interval`` epochs;
    :class:`~mmssl_ext.engine.hooks.ClusterMemoryHook` refreshes the
    centroids, handles small clusters and logs the cluster sizes (online
    labels); :class:`~mmssl_ext.engine.hooks.ModelParamScheduleHook` gives
    the loss-weight warm-up (``intra_loss_weight`` / ``inter_loss_weight``
    name ``base_loss_weight`` / ``branches.0.loss_weight``).

    Logged per iteration: ``loss_intra``, ``loss_inter`` (weighted),
    ``neg_widened``, ``change_ratio`` (online labels).

    State: the framework's (``queue``, ``encoder_k``) and the branch's
    (``branches.0.memory``, ``branches.0.sampling_seed`` /
    ``sampling_step``, ``branches.0.neck`` / ``neck_k``).

    Args:
        backbone (dict): backbone config (ResNet-50 on ImageNet).
        neck (dict): projection neck (``MoCoV2Neck`` 2048-2048-128).
        head (dict): intra-branch head, ``ContrastiveHead`` or
            ``MarginContrastiveHead`` (temperature 0.2).
        memory (dict): ``ClusterMemory`` config: ``length`` = data-set
            length, ``feat_dim`` (defaults to ``feat_dim``),
            ``num_clusters`` (10,000 on ImageNet), ``momentum`` (weights the
            NEW key; InterCLR 1.0 = replace), ``min_cluster`` (20),
            ``init='data'``.
        inter_head (dict, optional): inter-branch head. Defaults to
            ``MarginContrastiveHead(temperature=<head's>, cos_margin=-0.5)``.
        queue_len (int): MoCo queue length. Defaults to 65536.
        feat_dim (int): key / memory dim. Defaults to 128.
        momentum (float): momentum-encoder EMA coefficient in the MMEngine
            convention (weight of the NEW online weights): MoCo's 0.999 is
            0.001. Defaults to 0.001.
        neg_num (int): negatives per anchor. Defaults to 16384.
        neg_sampling (str | dict): ``'semihard'`` (default), ``'hard'``,
            ``'random'``, ``'semieasy'`` or a ``TASK_UTILS`` sampler config.
        semihard_neg_pool_num (int): semi-hard pool. Defaults to 128000.
        semieasy_neg_pool_num (int): semi-easy pool. Defaults to 128000.
        intra_loss_weight (float): Defaults to 0.75.
        inter_loss_weight (float): Defaults to 0.25.
        share_neck (bool): inter branch uses the intra neck (True, default)
            or its own neck, built from ``neck``'s config (with its own
            momentum copy).
        knn_backend (str): backend of the similarity search. Defaults to
            ``'torch'`` (chunked, any device); ``'faiss'`` rebuilds an index
            over the bank at every call (2.5x slower than torch for the
            CIFAR-scale semi-hard pool on one CPU thread).
        sampling_seed (int, optional): seed of the sampling generator;
            drawn from the global RNG when None.
    """
    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 memory: dict,
                 inter_head: Optional[dict] = None,
                 queue_len: int = 65536,
                 feat_dim: int = 128,
                 momentum: float = 0.001,
                 neg_num: int = 16384,
                 neg_sampling: Union[str, dict] = 'semihard',
                 semihard_neg_pool_num: int = 128000,
                 semieasy_neg_pool_num: int = 128000,
                 intra_loss_weight: float = 0.75,
                 inter_loss_weight: float = 0.25,
                 share_neck: bool = True,
                 knn_backend: str = 'torch',
                 sampling_seed: Optional[int] = None,
                 **kwargs) -> None:
        check_weight(intra_loss_weight, 'intra_loss_weight')
        check_weight(inter_loss_weight, 'inter_loss_weight')
        if isinstance(memory, dict):
            memory = {'feat_dim': feat_dim, **memory}
            if memory['feat_dim'] != feat_dim:
                raise ValueError(f"memory.feat_dim={memory['feat_dim']} != "
                                 f'feat_dim={feat_dim}')
        branch = dict(
            type='InterImageBranch',
            memory=memory,
            loss_weight=inter_loss_weight,
            head=inter_head,
            neck=None if share_neck else copy.deepcopy(neck),
            neg_num=neg_num,
            neg_sampling=neg_sampling,
            semihard_neg_pool_num=semihard_neg_pool_num,
            semieasy_neg_pool_num=semieasy_neg_pool_num,
            knn_backend=knn_backend,
            sampling_seed=sampling_seed)
        super().__init__(
            backbone=backbone,
            neck=neck,
            head=head,
            queue_len=queue_len,
            feat_dim=feat_dim,
            momentum=momentum,
            **kwargs,
            branches=[branch],
            base_loss_weight=intra_loss_weight,
            base_loss_key='loss_intra')
