"""CLD (Wang, Liu, Yu, CVPR 2021): cross-level instance-group
discrimination.

The group branch any instance-discrimination algorithm can carry (its
projection is :class:`~mmssl_ext.models.cld.cld_neck.CLDNeck`'s group
output):

* :class:`CLDGroupHead`: in-batch grouping of each view's group features
  (k-means or normalized cuts) and the symmetric cross-view loss, plus the
  group accuracy diagnostic.
* :func:`cross_level_loss`: the loss as a pure function.

Formulas (authors' code, ``train_cifar_*_cld.py``)::

    M^v, y^v = grouping(G^v)                # per view, on the batch
    L_CLD = 1/2 [ CE(G^1 M^2^T / tau, y^2) + CE(G^2 M^1^T / tau, y^1) ]
    group_acc = 100 * mean(argmax_k G^1 M^2^T == y^2)

``G^v`` are unit-norm group features, ``M^v`` the (not normalised, not
detached) group centroids, so the gradient flows through the centroids.
The branch (:class:`~mmssl_ext.models.cld.GroupBranch`) weights it:
``loss_group = lambda * L_CLD``.
"""
import math
import warnings
from typing import Dict, List, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine import dist
from mmengine.model import BaseModule

from mmssl_ext.registry import MODELS
from mmssl_ext.utils.dist import _gather_sizes, all_gather_with_grad
from ..utils.kmeans import batch_kmeans
from .ncut import spectral_clustering


GROUPINGS = ('kmeans', 'ncut')


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
    features (L2-normalised here); it returns ``L_CLD`` as ``loss_group``
    (unweighted: the :class:`~mmssl_ext.models.cld.GroupBranch` weights it).

    Grouping (per view, on the batch):

    * ``'kmeans'`` (the authors' scripts: ``--use-kmeans``): ``num_iters``
      rounds of Lloyd's algorithm initialised from the **first K rows**,
      assignment by squared Euclidean distance, empty groups with a **zero**
      centroid, centroids not normalised and not detached (the gradient
      flows through them into the features); labels from the last
      assignment. This is :func:`mmssl_ext.models.utils.kmeans.batch_kmeans`.
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
                 grouping: str = 'kmeans',
                 num_iters: int = 5,
                 num_eigvecs: int = 10,
                 ncut_sigma: float = 1.0,
                 gather: bool = False,
                 init_cfg: Optional[Union[dict, List[dict]]] = None):
        super().__init__(init_cfg=init_cfg)

        def count(v):
            return isinstance(v, int) and not isinstance(v, bool) and v >= 1

        for key, value, ok, want in (
                ('num_groups', num_groups, count(num_groups),
                 'a positive integer'),
                ('temperature', temperature,
                 isinstance(temperature, (int, float))
                 and math.isfinite(temperature) and temperature > 0, '> 0'),
                ('grouping', grouping, grouping in GROUPINGS,
                 f'one of {GROUPINGS}'),
                ('num_iters', num_iters, count(num_iters), 'an integer >= 1'),
                ('num_eigvecs', num_eigvecs, count(num_eigvecs),
                 'an integer >= 1'),
                ('ncut_sigma', ncut_sigma, ncut_sigma > 0, '> 0')):
            if not ok:
                raise ValueError(f'{key}={value!r} must be {want}')
        self.num_groups = num_groups
        self.temperature = float(temperature)
        self.grouping = grouping
        self.num_iters = num_iters
        self.num_eigvecs = num_eigvecs
        self.ncut_sigma = float(ncut_sigma)
        self.gather = bool(gather)
        self._warned_k = False

    def extra_repr(self) -> str:
        return (f'num_groups={self.num_groups}, temperature='
                f'{self.temperature}, '
                f'grouping={self.grouping!r}, num_iters={self.num_iters}, '
                f'gather={self.gather}')

    def group(self, feats: torch.Tensor
              ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Group the rows of ``feats`` ((V, B, D) or (B, D)).

        Returns:
            tuple: ``(labels, centroids)``: (V, B) / (B,) long and
            (V, K, D) / (K, D), the centroids differentiable w.r.t.
            ``feats``.
        """
        n = feats.size(-2)
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
        if self.grouping == 'kmeans':
            res = batch_kmeans(feats, self.num_groups,
                               num_iters=self.num_iters)
            return res.labels, res.centroids
        labels, cents = zip(*[
            spectral_clustering(
                f, self.num_groups, num_eigvecs=self.num_eigvecs,
                num_iters=self.num_iters, sigma=self.ncut_sigma)
            for f in feats.reshape(-1, *feats.shape[-2:])
        ])
        return (torch.stack(labels).view(feats.shape[:-1]),
                torch.stack(cents).view(*feats.shape[:-2], self.num_groups,
                                        -1))

    def loss(self, g1: torch.Tensor, g2: torch.Tensor,
             true_labels: Optional[torch.Tensor] = None
             ) -> Dict[str, torch.Tensor]:
        """Cross-level loss of two views' group features.

        Args:
            g1, g2 (Tensor): (B, D) group-projection outputs of view 1 and
                view 2 of the same B samples (normalised here).
            true_labels (Tensor, optional): (B,) ground-truth classes of the
                samples, for monitoring only.

        Returns:
            dict: ``loss_group`` (``L_CLD``) and
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
                start = sum(_gather_sizes(n, g.device)[:dist.get_rank()])
                g_all = all_gather_with_grad(
                    g.transpose(0, 1).contiguous()).transpose(0, 1)
                labels, cents = self.group(g_all)
                labels = labels[:, start:start + n]
            else:
                labels, cents = self.group(g)
            loss, acc = cross_level_loss(g[0], g[1], labels[0], cents[0],
                                         labels[1], cents[1],
                                         self.temperature)
        out = dict(loss_group=loss, group_acc=acc)
        if true_labels is not None:
            from mmssl_ext.evaluation.functional import group_purity
            purity = sum(group_purity(lab, true_labels) for lab in labels)
            out['group_purity'] = (purity / len(labels)).to(acc)
        return out
