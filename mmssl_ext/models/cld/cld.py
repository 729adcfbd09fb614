"""CLD: Unsupervised Feature Learning by Cross-Level Instance-Group
Discrimination (Wang, Liu, Yu, CVPR 2021).

Two instance-discrimination algorithms carrying CLD's group branch
(:class:`~mmssl_ext.models.cld.CLDGroupHead`), as trained by the
authors:

* :class:`NPIDCLD` -- NPID instance branch with the **full** non-parametric
  softmax over the memory bank (``LinearAverage``, ``--nce-k 0``), two views.
* :class:`MoCoCLD` -- the MoCo instance branch of :class:`RingMoCo` with
  three views (two queries, one momentum key), queue, shuffle-BN; with an
  MLP/NormMLP neck and temperature 0.2 it is the ImageNet "MoCo v2 + CLD".

Both return ``loss_inst`` (instance term), ``loss_group`` (``lambda *
L_CLD``) and the diagnostic ``group_acc``.
"""
from typing import Dict, List, Optional, Union

import torch
import torch.nn.functional as F
from mmpretrain.models import BaseSelfSupervisor
from mmpretrain.structures import DataSample

from mmssl_ext.registry import MODELS
from mmssl_ext.utils.dist import get_gt_labels, get_sample_idx
from ..algorithms.ring_moco import RingMoCo
from ..memories import FeatureMemory, build_memory

__all__ = ['NPIDCLD', 'MoCoCLD']


def _neck_out_dim(neck) -> Optional[int]:
    """Output dim of a :class:`CLDNeck`'s instance projection (None for
    other necks)."""
    out = getattr(getattr(neck, 'inst_proj', None), 'out_features', None)
    return None if out is None else int(out)


def _check_views(inputs, expected, algo: str, key: str) -> List[torch.Tensor]:
    if not isinstance(inputs, (list, tuple)):
        inputs = [inputs]
    if len(inputs) not in expected:
        raise ValueError(
            f'{algo} needs {" or ".join(map(str, sorted(expected)))} views '
            f'per sample, got {len(inputs)}: set {key} in the train '
            "pipeline (dict(type='MultiView', num_views=...))")
    return list(inputs)


@MODELS.register_module()
class NPIDCLD(BaseSelfSupervisor):
    """NPID + CLD (the authors' ``train_cifar_npid_cld.py``).

    Per view ``v`` of the batch (indices ``idx``)::

        f_v = normalize(inst_proj(x_v)),   G_v = normalize(group_proj(x_v))
        L_I = mean_v CE(f_v @ V^T / temperature, idx)   # full softmax over N
        loss = L_I + lambda * L_CLD(G_1, G_2)

    ``V`` is the (N, D) memory bank (:class:`FeatureMemory`); both views'
    logits use the bank *before* this iteration's update. The bank is then
    updated once per view, ``v_i <- normalize(0.5 v_i + 0.5 f)`` (CLD's /
    lemniscate's ``m = 0.5`` weights the old entry; our ``momentum`` weights
    the NEW feature, ``momentum = 1 - m``; equal at 0.5). The official code
    updates inside ``backward``, where autograd runs the second view's
    update first; we apply the views in that order (last view first).
    Updates all-gather (idx, feature) from every rank, so the bank is
    identical on every rank.

    The bank starts as unit-norm Gaussian rows (:class:`FeatureMemory`'s
    ``init='random'``); lemniscate draws U(-a, a) with a = sqrt(3 / D), whose
    rows also have expected unit norm and uniformly random directions.

    Without a ``group_head`` (and a neck built with ``with_group=False``)
    this is exactly NPID with the full non-parametric softmax
    (lemniscate's ``LinearAverage``): ``CE(f @ V^T / tau, idx)`` averaged
    over the views given (1 view = the NPID paper's setting).

    Args:
        backbone (dict): backbone config.
        neck (dict): :class:`CLDNeck` config (``(inst, group)`` outputs).
        memory (dict): :class:`FeatureMemory` config; ``length`` must equal
            the training-set length, ``feat_dim`` the neck's
            ``out_channels``, ``momentum`` 0.5 (weight of the new feature).
        group_head (dict, optional): :class:`CLDGroupHead` config; None
            disables the group branch (plain NPID).
        temperature (float): tau_I of the instance softmax. Defaults to 0.1.
        pretrained, data_preprocessor, init_cfg: as BaseSelfSupervisor.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 memory: dict,
                 group_head: Optional[dict] = None,
                 temperature: float = 0.1,
                 pretrained: Optional[str] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[Union[List[dict], dict]] = None):
        if not (isinstance(temperature, (int, float)) and temperature > 0):
            raise ValueError(
                f'model.temperature={temperature!r} must be > 0')
        super().__init__(
            backbone=backbone,
            neck=neck,
            head=None,
            pretrained=pretrained,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        self.temperature = float(temperature)
        self.memory = build_memory(memory, FeatureMemory)
        self.group_head = (MODELS.build(group_head) if isinstance(
            group_head, dict) else group_head)
        out_dim = _neck_out_dim(self.neck)
        if out_dim is not None and out_dim != self.memory.feat_dim:
            raise ValueError(
                f'model.memory.feat_dim={self.memory.feat_dim} must equal '
                f'model.neck.out_channels={out_dim}')
        if self.group_head is not None and getattr(
                self.neck, 'with_group', True) is False:
            raise ValueError('model.group_head is set but model.neck was '
                             'built with with_group=False')

    @property
    def with_group(self) -> bool:
        return self.group_head is not None

    def instance_logits(self, f: torch.Tensor,
                        bank: torch.Tensor) -> torch.Tensor:
        """Full non-parametric softmax logits ``f @ bank^T / tau`` (B, N)."""
        return f.mm(bank.t()) / self.temperature

    def loss(self, inputs: List[torch.Tensor], data_samples: List[DataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        views = _check_views(inputs, {2} if self.with_group else {1, 2, 3},
                             'NPIDCLD' + (' with a group head'
                                          if self.with_group else ''),
                             'num_views')
        idx = get_sample_idx(data_samples, device=views[0].device)
        if int(idx.max()) >= self.memory.length or int(idx.min()) < 0:
            raise ValueError(
                f'sample_idx up to {int(idx.max())} but model.memory.length='
                f'{self.memory.length}: the memory must have one row per '
                'training sample')
        inst, group = [], []
        for x in views:
            out = self.neck(self.backbone(x))
            inst.append(F.normalize(out[0], dim=1))
            if self.with_group:
                group.append(out[1])
        # snapshot: the update below must not touch the autograd graph
        bank = self.memory.bank.clone().to(inst[0].dtype)
        loss_inst = sum(
            F.cross_entropy(self.instance_logits(f, bank), idx)
            for f in inst) / len(inst)
        losses = dict(loss_inst=loss_inst)
        if self.with_group:
            losses.update(self.group_head.loss(
                group[0], group[1], get_gt_labels(data_samples)))
        for f in reversed(inst):  # authors' (autograd) order: last view first
            self.memory.update(idx, f)
        return losses


@MODELS.register_module()
class MoCoCLD(RingMoCo):
    """MoCo + CLD (``train_cifar_moco_cld.py``; ``main_imagenet_moco_cld.py``
    for MoCo v2 + CLD): :class:`RingMoCo` with three views -- two queries
    ``x_q1, x_q2`` through the online encoder (both branches), one key
    ``x_k`` (``key_view``) through the momentum encoder -- plus the group
    branch on the queries::

        q_v = normalize(inst(x_qv)), G_v = normalize(group(x_qv))
        k = normalize(inst_ema(x_k))
        L_I = 1/2 sum_v CE([q_v . k, q_v . Q^T] / tau_I, 0)
        loss = L_I + lambda * L_CLD(G_1, G_2)

    The queue ``Q`` (wrap-around ring, all-gathered keys, any batch size)
    receives ``k`` once per iteration, after both logits. It starts as
    unit-norm Gaussian rows (as MoCo's ImageNet code; the CIFAR code used
    un-normalised U(-a, a) rows, a = sqrt(3 / D)). Momentum: MMEngine
    convention, MoCo's 0.999 is ``momentum=0.001``.

    Args:
        backbone (dict): backbone config.
        neck (dict): :class:`CLDNeck` config.
        head (dict): instance head, ``ContrastiveHead`` (``temperature``
            tau_I: 0.07 CIFAR, 0.2 MoCo v2 ImageNet).
        group_head (dict, optional): :class:`CLDGroupHead` config; None
            gives MoCo with two queries per key.
        queue_len, feat_dim, momentum, shuffle_bn: as :class:`RingMoCo`.
        key_view (int): index of the key view among the three. Defaults to
            2 (CIFAR code: ``x3`` is the key); the ImageNet code uses 1.
        pretrained, data_preprocessor, init_cfg: as BaseSelfSupervisor.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 group_head: Optional[dict] = None,
                 key_view: int = 2,
                 feat_dim: int = 128,
                 **kwargs):
        super().__init__(backbone=backbone, neck=neck, head=head,
                         key_view=key_view, num_views=3, feat_dim=feat_dim,
                         **kwargs)
        out_dim = _neck_out_dim(self.neck)
        if out_dim is not None and out_dim != feat_dim:
            raise ValueError(f'model.feat_dim={feat_dim} must equal '
                             f'model.neck.out_channels={out_dim}')
        self.group_head = (MODELS.build(group_head) if isinstance(
            group_head, dict) else group_head)

    @property
    def with_group(self) -> bool:
        return self.group_head is not None

    def loss(self, inputs: List[torch.Tensor], data_samples: List[DataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        x_k, x_qs = self.split_views(inputs)
        # separate forwards: BN statistics per view
        outs = [self.neck(self.backbone(x)) for x in x_qs]
        k = self.momentum_keys(x_k)
        losses = dict(loss_inst=self.contrast(
            [F.normalize(out[0], dim=1) for out in outs], k))
        if self.with_group:
            losses.update(self.group_head.loss(
                outs[0][1], outs[1][1], get_gt_labels(data_samples)))
        self.queue.enqueue(k)
        return losses
