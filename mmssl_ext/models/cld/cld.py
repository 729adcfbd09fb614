"""CLD: Unsupervised Feature Learning by Cross-Level Instance-Group
Discrimination (Wang, Liu, Yu, CVPR 2021).

Two instance-discrimination algorithms carrying CLD's group branch
(:class:`~mmssl_ext.models.cld.GroupBranch`), as trained by the authors;
both are fixed compositions (a framework plus the branch), and the same
branch goes on any other framework through ``ComposedSSL``:

* :class:`NPIDCLD` -- NPID instance branch with the **full** non-parametric
  softmax over the memory bank (``LinearAverage``, ``--nce-k 0``), two views.
* :class:`MoCoCLD` -- the MoCo instance branch of :class:`RingMoCo` with
  three views (two queries, one momentum key), queue, shuffle-BN; with an
  MLP/NormMLP neck and temperature 0.2 it is the ImageNet "MoCo v2 + CLD".

Both return ``loss_inst`` (instance term), ``loss_group`` (``lambda *
L_CLD``) and the diagnostic ``group_acc``.
"""
from typing import Dict, List, Optional

import torch
from mmpretrain.structures import DataSample

from mmssl_ext.registry import MODELS
from ..algorithms.composed import Composition
from ..algorithms.npid import NPID
from ..algorithms.ring_moco import RingMoCo


def _check_neck_dim(neck, dim: int, key: str) -> None:
    """Raise unless ``dim`` (the config value ``key``) equals the output dim
    of a :class:`CLDNeck`'s instance projection (other necks: no check)."""
    out = getattr(getattr(neck, 'inst_proj', None), 'out_features', None)
    if out is not None and out != dim:
        raise ValueError(f'{key}={dim} must equal '
                         f'model.neck.out_channels={out}')


def _group_branches(group_head) -> list:
    """The branches of a ``GroupBranch`` config (by default it reads the
    group projection of the model's CLDNeck)."""
    if group_head is None:
        return []
    if not isinstance(group_head, dict) or str(group_head.get(
            'type', '')).split('.')[-1] != 'GroupBranch':
        raise TypeError('model.group_head must be a GroupBranch config, '
                        f'got {group_head!r}')
    return [dict(group_head)]


@MODELS.register_module()
class NPIDCLD(Composition, NPID):
    """NPID + CLD (the authors' ``train_cifar_npid_cld.py``): :class:`NPID`
    with the full softmax plus the group branch on the neck's group output.

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
        group_head (dict, optional): :class:`GroupBranch` config
            (``num_groups``, ``loss_weight`` lambda, the head's
            ``temperature`` ...); None disables the group
            branch (plain NPID).
        temperature (float): tau_I of the instance softmax. Defaults to 0.1.
        pretrained, data_preprocessor, init_cfg: as BaseSelfSupervisor.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 memory: dict,
                 group_head: Optional[dict] = None,
                 temperature: float = 0.1,
                 **kwargs):
        if not (isinstance(temperature, (int, float)) and temperature > 0):
            raise ValueError(
                f'model.temperature={temperature!r} must be > 0')
        super().__init__(
            backbone=backbone,
            neck=neck,
            head=dict(type='ContrastiveHead',
                      loss=dict(type='CrossEntropyLoss'),
                      temperature=float(temperature)),
            memory=memory,
            neg_num=None,
            **kwargs,
            branches=_group_branches(group_head),
            base_loss_key='loss_inst')
        _check_neck_dim(self.neck, self.memory.feat_dim,
                        'model.memory.feat_dim')

    def loss(self, inputs: List[torch.Tensor], data_samples: List[DataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        n = len(inputs) if isinstance(inputs, (list, tuple)) else 1
        with_group = len(self.branches) > 0
        expected = {2} if with_group else {1, 2, 3}
        if n not in expected:
            raise ValueError(
                f'NPIDCLD{" with a group head" if with_group else ""} '
                f'needs {" or ".join(map(str, sorted(expected)))} views per '
                f'sample, got {n}: set num_views in the train pipeline '
                "(dict(type='MultiView', num_views=...))")
        return super().loss(inputs, data_samples, **kwargs)


@MODELS.register_module()
class MoCoCLD(Composition, RingMoCo):
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
        group_head (dict, optional): :class:`GroupBranch` config; None gives MoCo with two queries per key.
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
                         branches=_group_branches(group_head),
                         base_loss_key='loss_inst', **kwargs)
        _check_neck_dim(self.neck, feat_dim, 'model.feat_dim')
