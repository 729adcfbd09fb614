"""CLD (Wang, Liu, Yu, CVPR 2021): cross-level instance-group
discrimination.

This file holds the pieces any instance-discrimination algorithm needs to
carry a CLD group branch:

* :class:`NormedLinear`: the cosine projection layer of the paper
  ("normalized projection head").
* :class:`CLDNeck`: pools the backbone output and applies two separate
  projections, an *instance* one and a *group* one, on the same pooled
  feature (``Linear`` or ``NormedLinear``; optionally after a shared
  ``Linear + ReLU`` layer, the ImageNet "MLP"/"NormMLP" head).
* :class:`CLDGroupHead`: the group branch itself: in-batch grouping of each
  view's group features (k-means or normalized cuts) and the symmetric
  cross-view loss, plus the group accuracy diagnostic.
* :func:`cross_level_loss`: the loss as a pure function.

Formulas (authors' code, ``train_cifar_*_cld.py``)::

    M^v, y^v = grouping(G^v)                # per view, on the batch
    L_CLD = 1/2 [ CE(G^1 M^2^T / tau, y^2) + CE(G^2 M^1^T / tau, y^1) ]
    group_acc = 100 * mean(argmax_k G^1 M^2^T == y^2)

``G^v`` are unit-norm group features, ``M^v`` the (not normalised, not
detached) group centroids, so the gradient flows through the centroids.
The weighted term ``lambda * L_CLD`` is returned as ``loss_group``.
"""
import math
import warnings
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine import dist
from mmengine.model import BaseModule

from mmssl_ext.models.utils.kmeans import batch_kmeans
from mmssl_ext.models.utils.ncut import spectral_clustering
from mmssl_ext.registry import MODELS
from mmssl_ext.utils.dist import all_gather_with_grad

__all__ = [
    'NormedLinear', 'CLDNeck', 'CLDGroupHead', 'cross_level_loss',
    'GROUPINGS', 'PROJ_TYPES'
]

GROUPINGS = ('kmeans', 'ncut')
PROJ_TYPES = ('linear', 'normed')


@MODELS.register_module()
class NormedLinear(nn.Module):
    """Cosine layer ``y = normalize(x) @ normalize(W, dim=0)``, no bias.

    Every output is the cosine between the input and one weight column, so
    it lies in [-1, 1] whatever the input scale. The weight ``(in, out)`` is
    initialised from U(-1, 1) with every column rescaled to unit norm (the
    authors' ``uniform_(-1, 1).renorm_(2, 1, 1e-5).mul_(1e5)``).

    Args:
        in_features (int): input dim.
        out_features (int): output dim.
        eps (float): floor of the norms. Defaults to 1e-12.
    """

    def __init__(self, in_features: int, out_features: int,
                 eps: float = 1e-12):
        super().__init__()
        if in_features < 1 or out_features < 1:
            raise ValueError(f'in_features={in_features} and out_features='
                             f'{out_features} must be >= 1')
        self.in_features, self.out_features = in_features, out_features
        self.eps = eps
        self.weight = nn.Parameter(torch.empty(in_features, out_features))
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        self.weight.uniform_(-1., 1.)
        self.weight.div_(self.weight.norm(dim=0, keepdim=True).clamp(
            min=self.eps))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=1, eps=self.eps).mm(
            F.normalize(self.weight, dim=0, eps=self.eps))

    def extra_repr(self) -> str:
        return f'in_features={self.in_features}, ' \
               f'out_features={self.out_features}'


def _projection(proj_type: str, in_channels: int, out_channels: int):
    if proj_type == 'linear':
        return nn.Linear(in_channels, out_channels)
    return NormedLinear(in_channels, out_channels)


@MODELS.register_module()
class CLDNeck(BaseModule):
    """Instance and group projections on the same pooled feature.

    ``forward`` returns ``(inst, group)`` (or ``(inst,)`` with
    ``with_group=False``), **not** normalised: the algorithm L2-normalises
    both, as the authors do.

    Layouts of the official code:

    * CIFAR (``resnet_cifar.py``): ``hid_channels=None``; instance
      ``Linear``/``NormedLinear(512, 128)`` and group one of the same type.
    * ImageNet MoCo v2 (``ResNet.py``, ``--mlp``): ``hid_channels=2048``,
      a shared ``Linear(2048, 2048) + ReLU``, then the two projections
      (``proj_type='linear'`` = "MLP", ``'normed'`` = "NormMLP").

    Args:
        in_channels (int): channels of the backbone output.
        out_channels (int): projection dim. Defaults to 128.
        hid_channels (int, optional): width of the shared ``Linear + ReLU``
            layer; None (default) for no shared layer.
        proj_type (str): ``'linear'`` (default) or ``'normed'``
            (:class:`NormedLinear`), used by both projections.
        with_group (bool): build the group projection. Defaults to True;
            False gives a plain one-projection neck (the NPID baseline).
        with_avg_pool (bool): global-average-pool a 4-d input. Defaults to
            True.
        init_cfg (dict, optional): mmengine init config. Defaults to None
            (PyTorch's default init, as in the official code).
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int = 128,
                 hid_channels: Optional[int] = None,
                 proj_type: str = 'linear',
                 with_group: bool = True,
                 with_avg_pool: bool = True,
                 init_cfg: Optional[Union[dict, List[dict]]] = None):
        super().__init__(init_cfg=init_cfg)
        if proj_type not in PROJ_TYPES:
            raise ValueError(f'proj_type={proj_type!r} must be one of '
                             f'{PROJ_TYPES}')
        if in_channels < 1 or out_channels < 1 or (hid_channels is not None
                                                   and hid_channels < 1):
            raise ValueError(
                f'in_channels={in_channels}, out_channels={out_channels} '
                f'and hid_channels={hid_channels} must be >= 1')
        self.with_avg_pool = with_avg_pool
        self.with_group = with_group
        self.proj_type = proj_type
        if hid_channels is not None:
            self.shared = nn.Sequential(
                nn.Linear(in_channels, hid_channels), nn.ReLU(inplace=True))
            in_channels = hid_channels
        else:
            self.shared = nn.Identity()
        self.inst_proj = _projection(proj_type, in_channels, out_channels)
        self.group_proj = _projection(proj_type, in_channels,
                                      out_channels) if with_group else None

    def forward(self, x: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, ...]:
        """Args:
            x (tuple[Tensor]): backbone outputs; the last one is used.

        Returns:
            tuple[Tensor]: ``(inst, group)`` or ``(inst,)``, each (B, C).
        """
        feat = x[-1] if isinstance(x, (tuple, list)) else x
        if feat.dim() == 4:
            if self.with_avg_pool:
                feat = F.adaptive_avg_pool2d(feat, 1)
            feat = feat.flatten(1)
        feat = self.shared(feat)
        inst = self.inst_proj(feat)
        if self.group_proj is None:
            return (inst, )
        return inst, self.group_proj(feat)


def cross_level_loss(g1: torch.Tensor, g2: torch.Tensor,
                     labels1: torch.Tensor, centroids1: torch.Tensor,
                     labels2: torch.Tensor, centroids2: torch.Tensor,
                     temperature: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """Symmetric cross-view instance-group loss (unweighted).

    ``L = (CE(g1 @ c2.T / t, labels2) + CE(g2 @ c1.T / t, labels1)) / 2``

    Args:
        g1, g2 (Tensor): (B, D) group features of the two views.
        labels1, labels2 (Tensor): (B,) group of every sample in its view.
        centroids1, centroids2 (Tensor): (K, D) group centroids per view.
        temperature (float): tau_G.

    Returns:
        tuple: ``(loss, acc)``, acc = percentage of samples whose view-1
        feature is nearest (largest logit) to its view-2 group, as logged by
        the authors.
    """
    logits12 = g1.mm(centroids2.t()) / temperature
    logits21 = g2.mm(centroids1.t()) / temperature
    loss = 0.5 * (F.cross_entropy(logits12, labels2) +
                  F.cross_entropy(logits21, labels1))
    with torch.no_grad():
        acc = (logits12.argmax(1) == labels2).float().mean() * 100.
    return loss, acc


@MODELS.register_module()
class CLDGroupHead(BaseModule):
    """CLD's group branch: group each view's batch, contrast across views.

    The branch is independent of the instance branch, so any instance
    discrimination algorithm can carry it: give it two views' (B, D) group
    features (L2-normalised here) and add the returned ``loss_group``.

    Grouping (per view, on the batch):

    * ``'kmeans'`` (the authors' scripts: ``--use-kmeans``): ``num_iters``
      rounds of Lloyd's algorithm initialised from the **first K rows**,
      assignment by squared Euclidean distance, empty groups with a **zero**
      centroid, centroids not normalised and not detached (the gradient
      flows through them into the features); labels from the last
      assignment. This is :func:`mmssl_ext.models.utils.kmeans.batch_kmeans`
      with ``init='first'``, ``strict=False``.
    * ``'ncut'``: K-way normalized cuts (:func:`spectral_clustering`):
      k-means on the first ``num_eigvecs`` generalized eigenvectors of the
      batch's |cosine| affinity graph, centroids = means of the group
      features per cluster (with gradient).

    **Per-GPU by design.** As in the official code, each rank groups its
    own batch (``gather=False``); the loss then depends on the per-GPU batch
    size and on how the global batch is split. ``gather=True`` groups the
    all-gathered global batch instead (same grouping on every rank, gradient
    through the centroids reaches every rank's features); each rank's loss
    covers its own rows.

    **K larger than the batch.** If ``num_groups`` exceeds the number of
    rows that are grouped (e.g. the ImageNet recipe: K=120 with 64 samples
    per GPU), only the first B centroids are initialised from data and the
    rest stay zero: every sample forms its own group and the branch becomes
    cross-view instance discrimination on the group head (authors' issues
    #4, #11; intended by the authors). A warning is issued once.

    Args:
        num_groups (int): K. Required (CIFAR-10 NPID 128, MoCo 200; CIFAR-100
            NPID 200, MoCo 100; ImageNet 120).
        temperature (float): tau_G. Defaults to 0.2 (0.4 on ImageNet).
        loss_weight (float): lambda. Defaults to 1.0.
        grouping (str): ``'kmeans'`` (default) or ``'ncut'``.
        num_iters (int): k-means rounds. Defaults to 5.
        num_eigvecs (int): eigenvectors used by ``'ncut'``. Defaults to 10
            (the CIFAR scripts' ``--k_eigen`` default).
        ncut_sigma (float): affinity scale of ``'ncut'``. Defaults to 1.0.
        gather (bool): group the all-gathered batch. Defaults to False.
        init_cfg (dict, optional): unused (no parameters).
    """

    def __init__(self,
                 num_groups: int,
                 temperature: float = 0.2,
                 loss_weight: float = 1.0,
                 grouping: str = 'kmeans',
                 num_iters: int = 5,
                 num_eigvecs: int = 10,
                 ncut_sigma: float = 1.0,
                 gather: bool = False,
                 init_cfg: Optional[Union[dict, List[dict]]] = None):
        super().__init__(init_cfg=init_cfg)
        if isinstance(num_groups, bool) or not isinstance(
                num_groups, int) or num_groups < 1:
            raise ValueError(
                f'num_groups={num_groups!r} must be a positive integer')
        if not (isinstance(temperature, (int, float))
                and math.isfinite(temperature) and temperature > 0):
            raise ValueError(f'temperature={temperature!r} must be > 0')
        if not (isinstance(loss_weight, (int, float))
                and math.isfinite(loss_weight) and loss_weight >= 0):
            raise ValueError(f'loss_weight={loss_weight!r} must be >= 0')
        if grouping not in GROUPINGS:
            raise ValueError(f'grouping={grouping!r} must be one of '
                             f'{GROUPINGS}')
        if not isinstance(num_iters, int) or num_iters < 1:
            raise ValueError(f'num_iters={num_iters!r} must be an integer '
                             '>= 1')
        if not isinstance(num_eigvecs, int) or num_eigvecs < 1:
            raise ValueError(f'num_eigvecs={num_eigvecs!r} must be an '
                             'integer >= 1')
        if not ncut_sigma > 0:
            raise ValueError(f'ncut_sigma={ncut_sigma!r} must be > 0')
        self.num_groups = num_groups
        self.temperature = float(temperature)
        self.loss_weight = float(loss_weight)
        self.grouping = grouping
        self.num_iters = num_iters
        self.num_eigvecs = num_eigvecs
        self.ncut_sigma = float(ncut_sigma)
        self.gather = bool(gather)
        self._warned_k = False

    def extra_repr(self) -> str:
        return (f'num_groups={self.num_groups}, temperature='
                f'{self.temperature}, loss_weight={self.loss_weight}, '
                f'grouping={self.grouping!r}, num_iters={self.num_iters}, '
                f'gather={self.gather}')

    def _check_batch(self, n: int) -> None:
        if self.num_groups > n and not self._warned_k:
            self._warned_k = True
            where = 'global' if self.gather else 'per-GPU'
            warnings.warn(
                f'CLDGroupHead: num_groups={self.num_groups} > {where} batch '
                f'size {n}: only {n} groups can be non-empty, every sample '
                'forms its own group and the group branch reduces to '
                'cross-view instance discrimination on the group head (the '
                "authors' ImageNet setting, their issues #4/#11). Lower "
                'num_groups or raise the batch size to get real groups.')

    def group(self, feats: torch.Tensor
              ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Group the rows of ``feats`` ((V, B, D) or (B, D)).

        Returns:
            tuple: ``(labels, centroids)``: (V, B) / (B,) long and
            (V, K, D) / (K, D), the centroids differentiable w.r.t.
            ``feats``.
        """
        self._check_batch(feats.size(-2))
        if self.grouping == 'kmeans':
            res = batch_kmeans(
                feats, self.num_groups, num_iters=self.num_iters,
                init='first', strict=False, key='num_groups')
            return res.labels, res.centroids
        if feats.dim() == 2:
            return spectral_clustering(
                feats, self.num_groups, num_eigvecs=self.num_eigvecs,
                num_iters=self.num_iters, sigma=self.ncut_sigma)
        outs = [
            spectral_clustering(
                f, self.num_groups, num_eigvecs=self.num_eigvecs,
                num_iters=self.num_iters, sigma=self.ncut_sigma)
            for f in feats
        ]
        return (torch.stack([o[0] for o in outs]),
                torch.stack([o[1] for o in outs]))

    def loss(self, g1: torch.Tensor, g2: torch.Tensor,
             true_labels: Optional[torch.Tensor] = None
             ) -> Dict[str, torch.Tensor]:
        """Weighted cross-level loss of two views' group features.

        Args:
            g1, g2 (Tensor): (B, D) group-projection outputs of view 1 and
                view 2 of the same B samples (normalised here).
            true_labels (Tensor, optional): (B,) ground-truth classes of the
                samples, for monitoring only.

        Returns:
            dict: ``loss_group`` (``loss_weight * L_CLD``) and
            ``group_acc`` (percent, no gradient); with ``true_labels``
            also ``group_purity``: the fraction of samples that carry their
            group's majority class (mean of the two views' groupings).
        """
        if g1.shape != g2.shape or g1.dim() != 2:
            raise ValueError(f'CLDGroupHead.loss expects two (B, D) tensors '
                             f'of the same shape, got {tuple(g1.shape)} and '
                             f'{tuple(g2.shape)}')
        # k-means in fp32 even under AMP (distances and argmin of unit
        # vectors are fragile in fp16).
        with torch.autocast(device_type=g1.device.type, enabled=False):
            g = torch.stack([g1.float(), g2.float()])
            g = F.normalize(g, dim=2)
            if self.gather and dist.get_world_size() > 1:
                n = g.size(1)
                sizes = [int(s) for s in dist.all_gather(
                    torch.tensor([n], device=g.device))]
                start = sum(sizes[:dist.get_rank()])
                g_all = all_gather_with_grad(
                    g.transpose(0, 1).contiguous()).transpose(0, 1)
                labels, cents = self.group(g_all)
                labels = labels[:, start:start + n]
            else:
                labels, cents = self.group(g)
            loss, acc = cross_level_loss(g[0], g[1], labels[0], cents[0],
                                         labels[1], cents[1],
                                         self.temperature)
        out = dict(loss_group=loss * self.loss_weight, group_acc=acc)
        if true_labels is not None:
            from mmssl_ext.evaluation.functional import group_purity
            purity = sum(group_purity(lab, true_labels) for lab in labels)
            out['group_purity'] = acc.new_tensor(purity / len(labels))
        return out
