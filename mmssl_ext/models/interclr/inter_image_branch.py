"""InterCLR's inter-image branch, on any two-view framework.

Xie, Zhan, Liu, Ong, Loy. "Delving into Inter-Image Invariance for
Unsupervised Visual Representations", IJCV 2022. The branch is the part of
InterCLR that is not MoCo: a memory of the training set with pseudo-labels,
a positive from the query's pseudo-class, sampled negatives of the other
classes, a margin on the positive.
"""
from typing import Dict, Optional, Union

import torch
import torch.nn.functional as F
from mmengine import dist
from mmengine.model import ExponentialMovingAverage

from mmssl_ext.registry import MODELS
from mmssl_ext.utils.dist import get_sample_idx
from mmssl_ext.utils.host_state import (host_scalar, register_host_scalar,
                                        set_host_scalar)
from mmssl_ext.utils.seeding import seeded_generator
from ..algorithms.composed import BaseBranch, build_module
from ..algorithms.siamese import SiameseStep, framework_of
from ..memories import ClusterMemory, build_memory
from .neg_sampling import build_neg_sampler, sample_positives


@MODELS.register_module()
class InterImageBranch(BaseBranch):
    """InterCLR's inter-image term on the step of a two-view framework.

    With the framework's pair ``(query view a, target view b)`` (MoCo: the
    query and the key; the others: views 0 and 1) and the batch's data-set
    indices ``idx``:

    * ``q = normalize(projection of view a)`` -- the framework's online
      projection, or this branch's own ``neck`` on the online backbone
      features;
    * ``y = label_bank[idx]``; one positive ``p`` drawn uniformly from
      ``{j: label_bank[j] == y}`` (possibly the sample itself) and
      ``neg_num`` negatives drawn by ``neg_sampling`` among the other
      pseudo-classes;
    * ``loss_inter = loss_weight * CE([m(q.bank[p]), q.bank[negs]] / tau,
      0)`` through ``head`` (default: ``MarginContrastiveHead`` with the
      framework head's temperature, 0.2 without one, and the cosine margin
      -0.5: ``m(s) = s + 0.5``);
    * after the framework's own update, the memory rows ``idx`` get the
      framework's *target* of view b (see below) with the memory's momentum
      rule, and online labels when ``memory.online_labels``.

    **What the branch contrasts against.** The positive and the negatives
    are rows of the branch's own memory, never the framework's negatives, so
    the branch is the same on frameworks with negatives (MoCo, SimCLR, NPID)
    and without (BYOL, SimSiam). The memory holds what the framework pulls
    view a towards, of view b: MoCo's momentum key, BYOL's target-network
    projection, SimCLR's, SimSiam's and NPID's own (stop-gradient)
    projection. With its own ``neck``, the target is that neck on the
    momentum backbone's features through a momentum copy of the neck (MoCo;
    ``momentum`` defaults to the key encoder's), or on the online backbone's
    features without gradient (SimCLR, SimSiam, NPID); BYOL's target network
    has no copy of a branch neck, so a separate neck is refused there.

    The memory is filled before training, and kept up to date, by
    ``OfflineClusterHook`` (features of :meth:`clustering_feature`, k-means)
    and ``ClusterMemoryHook`` (centroids, small clusters).

    Randomness of the draws comes from a generator seeded by the persistent
    ``sampling_seed`` / ``sampling_step`` buffers and the rank (stream
    ``(seed, 1009 * step + rank)``), so a resumed run repeats the draws.

    Args:
        memory (dict): ``ClusterMemory`` config; ``length`` = training-set
            length, ``feat_dim`` = the projection dim, ``num_clusters``;
            ``init='data'`` by default.
        loss_weight (float): Defaults to 0.25 (InterCLR).
        head (dict, optional): the inter-image head (see above).
        neck (dict, optional): a projection of the branch's own (InterCLR's
            ``share_neck=False``); None shares the framework's.
        momentum (float, optional): EMA weight of the new value for the
            momentum copy of ``neck`` (MoCo only).
        neg_num (int): negatives per anchor. Defaults to 16384.
        neg_sampling (str | dict): ``'semihard'`` (default), ``'hard'``,
            ``'random'``, ``'semieasy'`` or a ``TASK_UTILS`` sampler config.
        semihard_neg_pool_num, semieasy_neg_pool_num (int): pool sizes.
            Default to 128000.
        knn_backend (str): ``'torch'`` (default) or ``'faiss'``.
        sampling_seed (int, optional): seed of the draws; drawn from the
            global RNG when None.
    """
    loss_keys = ('loss_inter', 'neg_widened', 'change_ratio')

    def __init__(self,
                 memory: dict,
                 loss_weight: float = 0.25,
                 head: Optional[dict] = None,
                 neck: Optional[dict] = None,
                 momentum: Optional[float] = None,
                 neg_num: int = 16384,
                 neg_sampling: Union[str, dict] = 'semihard',
                 semihard_neg_pool_num: int = 128000,
                 semieasy_neg_pool_num: int = 128000,
                 knn_backend: str = 'torch',
                 sampling_seed: Optional[int] = None,
                 init_cfg=None) -> None:
        super().__init__(loss_weight, init_cfg=init_cfg)
        if isinstance(memory, dict) and 'feat_dim' not in memory:
            raise ValueError('InterImageBranch: memory.feat_dim is required '
                             "(the dim of the framework's projection, or of "
                             'the branch neck)')
        self.memory = build_memory(memory, ClusterMemory, init='data')
        self.head = None if head is None else build_module(head)
        self.neck = None if neck is None else build_module(neck)
        self.neck_k = None
        if momentum is not None and not 0. < momentum <= 1.:
            raise ValueError(f'momentum={momentum} must be in (0, 1] '
                             '(weight of the new value)')
        self.momentum = momentum
        self.neg_sampler = build_neg_sampler(
            neg_sampling, neg_num, semihard_neg_pool_num,
            semieasy_neg_pool_num, knn_backend=knn_backend)
        self.neg_sampler.check_bank_length(self.memory.length)
        if sampling_seed is None:
            sampling_seed = int(torch.randint(0, 2**31 - 1, (1, )))
        register_host_scalar(self, 'sampling_seed', int(sampling_seed))
        register_host_scalar(self, 'sampling_step', 0)
        self._pending = None

    def attach(self, model, key: str) -> None:
        super().attach(model, key)
        framework = framework_of(model)
        if self.head is None:
            self.head = build_module(
                dict(type='MarginContrastiveHead',
                     loss=dict(type='CrossEntropyLoss'),
                     temperature=getattr(model.head, 'temperature', 0.2),
                     cos_margin=-0.5))
        own_neck = self.neck is not None
        if own_neck and framework == 'byol':
            raise ValueError(
                f'{key}.neck: a separate projection is not supported on '
                "BYOL (its target network has no copy of it); set neck=None "
                "to use the framework's projection")
        if self.momentum is not None and not (own_neck
                                              and framework == 'moco'):
            raise ValueError(
                f'{key}.momentum is the momentum of the copy of the branch '
                'neck, which only a branch neck (neck=dict(...)) on a '
                f'framework with a momentum encoder (MoCo; not '
                f'{type(model).__name__}) has: drop it')
        if own_neck and framework == 'moco':
            momentum = (model.encoder_k.momentum
                        if self.momentum is None else self.momentum)
            self.neck_k = ExponentialMovingAverage(self.neck, momentum)

    def check_ready(self) -> None:
        if not self.memory.is_initialized():
            raise RuntimeError(
                f'{self.key}: the inter-image memory is not initialised; add '
                "dict(type='OfflineClusterHook', ...) to custom_hooks (it "
                'clusters the training set before training)')

    def clustering_feature(self, model, inputs: torch.Tensor) -> torch.Tensor:
        """Features clustered by ``OfflineClusterHook``: the (branch) neck
        output of the online encoder, (B, feat_dim)."""
        neck = model.neck if self.neck is None else self.neck
        return neck(model.backbone(inputs))[0].flatten(1)

    def diagnostics(self, true_labels: torch.Tensor) -> Dict[str, float]:
        """NMI and purity of the pseudo-labels against the true labels
        (monitoring)."""
        return self.memory.label_quality(true_labels)

    def inter_logits(self, q: torch.Tensor, idx: torch.Tensor,
                     generator: Optional[torch.Generator] = None):
        """Positive (B, 1) and negative (B, neg_num) similarities of the
        normalised queries ``q`` against the memory bank.

        Returns:
            tuple: ``(pos, neg, pos_idx, neg_idx)``.
        """
        mem = self.memory
        bank, label_bank = mem.bank, mem.label_bank
        labels = label_bank[idx.to(label_bank.device)]
        pos_idx = sample_positives(label_bank, labels, generator,
                                   mem.num_clusters)
        neg_idx = self.neg_sampler(
            q.detach(), bank, label_bank, labels, generator=generator)
        pos = (q * bank[pos_idx].to(q)).sum(1, keepdim=True)
        neg_feat = bank[neg_idx.flatten()].view(
            neg_idx.size(0), neg_idx.size(1), -1).to(q)  # (B, K, D)
        neg = torch.bmm(neg_feat, q.unsqueeze(2)).squeeze(2)
        return pos, neg, pos_idx, neg_idx

    @torch.no_grad()
    def _own_target(self, step: SiameseStep, view: int) -> torch.Tensor:
        if self.neck_k is None:  # no momentum encoder: the online one
            return F.normalize(self.neck(step.feature(view))[0], dim=1)
        self.neck_k.update_parameters(self.neck)
        step.target(view)  # makes sure the momentum features exist
        feats, restore = step.target_features[view]
        return F.normalize(restore(self.neck_k.module(feats)[0]), dim=1)

    def loss(self, model, step: SiameseStep,
             data_samples) -> Dict[str, torch.Tensor]:
        view_q, view_t = step.pair
        idx = get_sample_idx(data_samples, device=step.loss.device,
                             length=self.memory.length,
                             key=f'{self.key}.memory.length')
        if self.neck is None:
            q = step.query(view_q)
            target = step.target(view_t)
        else:
            q = F.normalize(self.neck(step.feature(view_q))[0], dim=1)
            target = self._own_target(step, view_t)
        if q.size(1) != self.memory.feat_dim:
            raise ValueError(
                f'{self.key}.memory.feat_dim={self.memory.feat_dim} but the '
                f'projection has {q.size(1)} dims')
        g = seeded_generator(
            host_scalar(self, 'sampling_seed'),
            1009 * host_scalar(self, 'sampling_step') + dist.get_rank(),
            device=self.memory.bank.device)
        pos, neg, _, _ = self.inter_logits(q, idx, g)
        loss = self.head.loss(pos, neg)
        widened = getattr(self.neg_sampler, 'last_widened', 0)
        self._pending = (idx, target)
        return dict(
            loss_inter=self.loss_weight * loss,
            # fraction of anchors whose negative pool had to be widened
            neg_widened=q.new_full((), widened / q.size(0)))

    def commit(self) -> Dict[str, torch.Tensor]:
        idx, target = self._pending
        self._pending = None
        out = self.memory.update(idx, target)
        set_host_scalar(self, 'sampling_step',
                        host_scalar(self, 'sampling_step') + 1)
        return out
