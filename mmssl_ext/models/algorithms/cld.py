"""CLD: Unsupervised Feature Learning by Cross-Level Instance-Group
Discrimination (Wang, Liu, Yu, CVPR 2021).

Two instance-discrimination algorithms carrying CLD's group branch
(:class:`~mmssl_ext.models.heads.cld_head.CLDGroupHead`), as trained by the
authors:

* :class:`NPIDCLD` -- NPID instance branch with the **full** non-parametric
  softmax over the memory bank (``LinearAverage``, ``--nce-k 0``), two views.
* :class:`MoCoCLD` -- MoCo instance branch with three views (two queries,
  one momentum key), queue, shuffle-BN; with an MLP/NormMLP neck and
  temperature 0.2 it is the ImageNet "MoCo v2 + CLD".

Both return ``loss_inst`` (instance term), ``loss_group`` (``lambda *
L_CLD``) and the diagnostic ``group_acc``.
"""
from typing import Dict, List, Optional, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine import dist
from mmengine.model import ExponentialMovingAverage
from mmpretrain.models import BaseSelfSupervisor
from mmpretrain.models.utils import batch_shuffle_ddp, batch_unshuffle_ddp
from mmpretrain.structures import DataSample

from mmssl_ext.models.memories import FeatureQueue
from mmssl_ext.registry import MODELS
from mmssl_ext.utils.dist import get_gt_labels, get_sample_idx

__all__ = ['NPIDCLD', 'MoCoCLD', 'shuffle_bn', 'unshuffle_bn']


def shuffle_bn(x: torch.Tensor):
    """Shuffle-BN across ranks (MMPretrain's ``batch_shuffle_ddp``: gather
    the global batch, permute it with a permutation broadcast from rank 0,
    hand every rank an equal share). A no-op returning ``(x, None)`` at
    world size 1, where shuffling cannot change BatchNorm statistics."""
    if dist.get_world_size() == 1:
        return x, None
    return batch_shuffle_ddp(x)


def unshuffle_bn(x: torch.Tensor, idx_unshuffle: Optional[torch.Tensor]):
    """Undo :func:`shuffle_bn`."""
    if idx_unshuffle is None:
        return x
    return batch_unshuffle_ddp(x, idx_unshuffle)


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
        self.memory = MODELS.build(memory) if isinstance(memory,
                                                         dict) else memory
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
class MoCoCLD(BaseSelfSupervisor):
    """MoCo + CLD (``train_cifar_moco_cld.py``; ``main_imagenet_moco_cld.py``
    for MoCo v2 + CLD).

    Three views: two queries ``x_q1, x_q2`` through the online encoder (both
    branches), one key ``x_k`` (``key_view``) through the momentum encoder
    with shuffle-BN::

        q_v = normalize(inst(x_qv)), G_v = normalize(group(x_qv))
        k = normalize(inst_ema(x_k))
        L_I = 1/2 sum_v CE([q_v . k, q_v . Q^T] / tau_I, 0)
        loss = L_I + lambda * L_CLD(G_1, G_2)

    The queue ``Q`` (:class:`FeatureQueue`, wrap-around ring, all-gathered
    keys, any batch size) receives ``k`` once per iteration, after both
    logits. It starts as unit-norm Gaussian rows (as MoCo's ImageNet code;
    the CIFAR code used un-normalised U(-a, a) rows, a = sqrt(3 / D)).

    Momentum encoder: :class:`mmengine.model.ExponentialMovingAverage` of
    ``backbone + neck``, updated at the start of every ``loss`` call (as
    MMPretrain's MoCo), MMEngine convention: ``momentum`` weights the NEW
    (online) parameters, so MoCo's 0.999 is ``momentum=0.001``.

    Shuffle-BN (``shuffle_bn=True``): MMPretrain's ``batch_shuffle_ddp``
    (all-gather + a permutation broadcast from rank 0) under DDP; a no-op at
    world size 1.

    Args:
        backbone (dict): backbone config.
        neck (dict): :class:`CLDNeck` config.
        head (dict): instance head, ``ContrastiveHead`` (``temperature``
            tau_I: 0.07 CIFAR, 0.2 MoCo v2 ImageNet).
        group_head (dict, optional): :class:`CLDGroupHead` config; None
            gives MoCo with two queries per key.
        queue_len (int): queue length. Defaults to 65536.
        feat_dim (int): projection dim. Defaults to 128.
        momentum (float): EMA weight of the new parameters. Defaults to
            0.001 (MoCo's 0.999).
        key_view (int): index of the key view among the three. Defaults to
            2 (CIFAR code: ``x3`` is the key); the ImageNet code uses 1.
        shuffle_bn (bool): shuffle the key batch across ranks. Defaults to
            True.
        pretrained, data_preprocessor, init_cfg: as BaseSelfSupervisor.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 group_head: Optional[dict] = None,
                 queue_len: int = 65536,
                 feat_dim: int = 128,
                 momentum: float = 0.001,
                 key_view: int = 2,
                 shuffle_bn: bool = True,
                 pretrained: Optional[str] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[Union[List[dict], dict]] = None):
        if not 0. < momentum <= 1.:
            raise ValueError(
                f'model.momentum={momentum!r} must be in (0, 1] (MMEngine '
                'convention: weight of the new parameters; MoCo 0.999 -> '
                '0.001)')
        if key_view not in (0, 1, 2):
            raise ValueError(f'model.key_view={key_view!r} must be 0, 1 or 2')
        if not isinstance(queue_len, int) or queue_len < 1:
            raise ValueError(f'model.queue_len={queue_len!r} must be >= 1')
        super().__init__(
            backbone=backbone,
            neck=neck,
            head=head,
            pretrained=pretrained,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        temp = getattr(self.head, 'temperature', 1.)
        if not temp > 0:
            raise ValueError(f'model.head.temperature={temp!r} must be > 0')
        out_dim = _neck_out_dim(self.neck)
        if out_dim is not None and out_dim != feat_dim:
            raise ValueError(f'model.feat_dim={feat_dim} must equal '
                             f'model.neck.out_channels={out_dim}')
        self.group_head = (MODELS.build(group_head) if isinstance(
            group_head, dict) else group_head)
        self.key_view = key_view
        self.shuffle_bn = shuffle_bn
        self.encoder_k = ExponentialMovingAverage(
            nn.Sequential(self.backbone, self.neck), momentum)
        self.queue = FeatureQueue(queue_len, feat_dim)

    @property
    def with_group(self) -> bool:
        return self.group_head is not None

    def loss(self, inputs: List[torch.Tensor], data_samples: List[DataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        views = _check_views(inputs, {3}, 'MoCoCLD', 'num_views=3')
        x_k = views[self.key_view]
        x_q = [v for i, v in enumerate(views) if i != self.key_view]

        qs, gs = [], []
        for x in x_q:  # separate forwards: BN statistics per view
            out = self.neck(self.backbone(x))
            qs.append(F.normalize(out[0], dim=1))
            if self.with_group:
                gs.append(out[1])

        with torch.no_grad():
            self.encoder_k.update_parameters(
                nn.Sequential(self.backbone, self.neck))
            if self.shuffle_bn:
                x_k, idx_unshuffle = shuffle_bn(x_k)
            k = F.normalize(self.encoder_k(x_k)[0], dim=1)
            if self.shuffle_bn:
                k = unshuffle_bn(k, idx_unshuffle)

        neg = self.queue.queue.clone().detach().to(qs[0].dtype)
        loss_inst = 0.
        for q in qs:
            l_pos = (q * k).sum(1, keepdim=True)
            l_neg = q.mm(neg.t())
            loss_inst = loss_inst + self.head.loss(l_pos, l_neg)
        losses = dict(loss_inst=loss_inst / len(qs))
        if self.with_group:
            losses.update(self.group_head.loss(
                gs[0], gs[1], get_gt_labels(data_samples)))
        self.queue.enqueue(k)
        return losses
