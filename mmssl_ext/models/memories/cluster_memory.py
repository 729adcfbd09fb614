"""Pseudo-label memories: a feature bank with a label bank and K centroids
(ODC's online clustering, InterCLR's inter-image memory), and a label bank
alone (DeepCluster)."""
import warnings
from typing import Dict, Optional, Sequence

import torch
from mmengine import dist

from mmssl_ext.registry import MODELS
from mmssl_ext.utils.dist import broadcast_from_rank0
from mmssl_ext.utils.host_state import (host_scalar, register_host_scalar,
                                        set_host_scalar, set_host_value)
from mmssl_ext.utils.seeding import seeded_generator
from ..utils.kmeans import kmeans
from .base import BaseMemory, ClusterState, label_counts
from .feature_memory import FeatureMemory


@MODELS.register_module()
class LabelMemory(BaseMemory, ClusterState):
    """One pseudo-label per sample, set by a clustering of the whole
    training set (DeepCluster); no features, no online update.

    Args:
        length (int): N, the training set length.
        num_clusters (int): K, ``K <= N``.

    Buffers (persistent): ``labels`` (N,) long, ``-1`` until the first
    :meth:`set_clusters`.
    """

    def __init__(self, length: int, num_clusters: int):
        super().__init__(length)
        self.set_num_clusters(num_clusters)
        self.register_buffer('labels',
                             torch.full((self.length, ), -1,
                                        dtype=torch.long))

    def extra_repr(self) -> str:
        return f'length={self.length}, num_clusters={self.num_clusters}'

    @property
    def initialized(self) -> bool:
        """Whether every sample has a label (a Python value, read from the
        labels once after construction or a checkpoint load)."""
        return host_scalar(self, 'initialized',
                           lambda: bool((self.labels >= 0).all()))

    def is_initialized(self) -> bool:
        return self.initialized

    @torch.no_grad()
    def set_clusters(self, feats: Optional[torch.Tensor],
                     labels: torch.Tensor) -> None:
        """Store new labels (N,) (identical on every rank); ``feats`` is not
        used."""
        self.labels.copy_(self.check_labels(labels))
        set_host_value(self, 'initialized', True)


@MODELS.register_module()
class ClusterMemory(FeatureMemory, ClusterState):
    """:class:`FeatureMemory` + ``label_bank`` (N,) + ``centroids`` (K, D).

    Rules (all identical on every rank; rank 0 computes every *decision*
    that is not a pure function of the replicated state -- centroids,
    small-cluster re-assignments, splits -- and broadcasts only that small
    result: labels, indices, centroids, never the bank):

    * :meth:`set_clusters` (a clustering of the training set): the first
      call fills the bank, the labels and the centroids
      (:meth:`init_memory`); a later one replaces the labels only (the bank
      keeps its momentum-updated rows) and refreshes the centroids.
    * :meth:`update` (every iteration): momentum-update the bank rows of
      the all-gathered batch (see :class:`FeatureMemory`); with
      ``online_labels``, relabel them ``label = argmax_c <centroid_c,
      bank_row>`` (un-normalised centroids, as ODC) and return the fraction
      of these labels that changed as ``change_ratio``.
    * :meth:`update_centroids`: centroid = mean of its members' bank rows
      (not re-normalised); an empty cluster keeps its previous centroid.
    * :meth:`deal_with_small_clusters`: every cluster with fewer than
      ``min_cluster`` members is dissolved (its members move to the
      nearest centroid among the other clusters; ties go to the lower
      cluster id) and then refilled by splitting the currently largest
      cluster (lowest id on ties) with 2-means (torch backend, initialised
      with its first member and the member farthest from it): the side that
      does not contain the cluster's smallest sample index moves to the
      refilled cluster; if 2-means leaves a side empty, a random half
      (``floor(n / 2)`` members) moves instead. The touched clusters
      (dissolved, receiving, split, refilled) get fresh centroids. The
      random halving uses ``seed`` and the persistent ``num_splits``
      counter, so a resumed run repeats it.

    Args:
        length (int): N (data-set length).
        feat_dim (int): D.
        num_clusters (int): K, ``K <= N``.
        momentum (float): weight of the new feature (1.0 = replace).
            Defaults to 0.5 (ODC).
        min_cluster (int): clusters smaller than this are dissolved.
            Defaults to 20 (ODC); 0 disables.
        init (str): ``'random'`` or ``'data'`` (see FeatureMemory).
        seed (int): seed of the bank init and of the random halving.
        online_labels (bool): relabel the updated rows (ODC; InterCLR's
            online labels, the default). False: the labels only change by
            :meth:`set_clusters` (InterCLR's offline labels, re-clustered
            every few epochs by ``OfflineClusterHook(interval=...)``).
            Defaults to True.

    Buffers (persistent): ``bank``, ``initialized``, ``label_bank`` (N,)
    long, ``centroids`` (K, D) float, ``num_splits`` long scalar.
    """

    def __init__(self,
                 length: int,
                 feat_dim: int,
                 num_clusters: int,
                 momentum: float = 0.5,
                 min_cluster: int = 20,
                 init: str = 'random',
                 seed: int = 0,
                 online_labels: bool = True):
        super().__init__(length, feat_dim, momentum=momentum, init=init,
                         seed=seed)
        self.set_num_clusters(num_clusters)
        if min_cluster < 0:
            raise ValueError(f'min_cluster={min_cluster} must be >= 0')
        self.min_cluster = int(min_cluster)
        self.online_labels = bool(online_labels)
        self.register_buffer('label_bank',
                             torch.zeros(length, dtype=torch.long))
        self.register_buffer('centroids', torch.zeros(num_clusters, feat_dim))
        register_host_scalar(self, 'num_splits', 0)

    def extra_repr(self) -> str:
        return (super().extra_repr() + f', num_clusters={self.num_clusters}, '
                f'min_cluster={self.min_cluster}, '
                f'online_labels={self.online_labels}')

    @property
    def labels(self) -> torch.Tensor:
        """The label bank (N,)."""
        return self.label_bank

    # ------------------------------------------------------------ state
    @torch.no_grad()
    def init_memory(self, feats: torch.Tensor, labels: torch.Tensor) -> None:
        """Bank = normalize(feats), labels, centroids = cluster means.

        ``feats`` (N, D) and ``labels`` (N,) must be identical on every rank
        (the offline clustering hook broadcasts the labels)."""
        labels = self.check_labels(labels)
        self.init_bank(feats)
        self.label_bank.copy_(labels)
        empty = int((self.histogram() == 0).sum())
        if empty:
            warnings.warn(f'ClusterMemory.init_memory: {empty} empty '
                          'clusters (they keep their previous centroid until '
                          'deal_with_small_clusters refills them)')
        self.update_centroids()

    @torch.no_grad()
    def set_clusters(self, feats: torch.Tensor, labels: torch.Tensor) -> None:
        """Result of a clustering of the training set (identical on every
        rank). First call: :meth:`init_memory` (the k-means centroids are
        not used: centroids are always the means of the bank rows). Later
        calls: replace the label bank only, then refresh the centroids."""
        if not self.is_initialized():
            self.init_memory(feats, labels)
            return
        self.label_bank.copy_(self.check_labels(labels))
        self.update_centroids()

    @torch.no_grad()
    def assign(self, feats: torch.Tensor, chunk: int = 8192) -> torch.Tensor:
        """``argmax_c <centroid_c, f>`` of every row of ``feats`` (no
        normalisation needed: a positive scale leaves the argmax)."""
        c = self.centroids.to(feats.device, torch.float32).t()
        return torch.cat([(f.float() @ c).argmax(1)
                          for f in feats.split(chunk)])

    @torch.no_grad()
    def update(self, idx: torch.Tensor,
               feats: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Momentum-update the bank with the all-gathered batch and, with
        ``online_labels``, relabel those rows; returns ``change_ratio`` (a
        scalar tensor on ``feats``' device, the same on every rank) in that
        case, else nothing."""
        gidx, f = self.gather_features(idx, feats)
        new = self.blend(gidx, f)
        if not self.online_labels:
            return {}
        new_labels = self.assign(new)
        changed = (new_labels != self.label_bank[gidx]).sum().float()
        self.label_bank[gidx] = new_labels
        return dict(
            change_ratio=(changed / max(gidx.numel(), 1)).to(feats.device))

    def _centroid_rows(self, cinds: torch.Tensor) -> torch.Tensor:
        """Means of clusters ``cinds`` (previous value if empty)."""
        k, m = self.num_clusters, cinds.numel()
        # row m collects the members of the other clusters (static shapes:
        # no boolean selection, no host synchronisation)
        pos = torch.full((k, ), m, dtype=torch.long,
                         device=self.label_bank.device)
        pos[cinds] = torch.arange(m, device=pos.device)
        rows = pos[self.label_bank].to(self.bank.device)
        sums = torch.zeros(m + 1, self.feat_dim, dtype=self.bank.dtype,
                           device=self.bank.device).index_add_(
                               0, rows, self.bank)[:m]
        counts = label_counts(rows, m + 1)[:m].unsqueeze(1)
        return torch.where(counts > 0,
                           sums / counts.clamp(min=1).to(sums.dtype),
                           self.centroids[cinds])

    @torch.no_grad()
    def update_centroids(self, cinds: Optional[Sequence[int]] = None) -> None:
        """Recompute the centroids of ``cinds`` (cluster ids: a sequence or
        a tensor; all if None) from the bank on rank 0 and broadcast those
        rows."""
        if cinds is None:
            cinds = torch.arange(self.num_clusters,
                                 device=self.label_bank.device)
        cinds = torch.as_tensor(cinds, dtype=torch.long).view(-1).to(
            self.label_bank.device, non_blocking=True)
        if cinds.numel() == 0:
            return
        rows = self._centroid_rows(cinds) if dist.get_rank() == 0 else None
        rows = broadcast_from_rank0(rows)
        self.centroids[cinds] = rows.to(self.centroids)

    # ----------------------------------------------------- small clusters
    def _split(self, members: torch.Tensor) -> torch.Tensor:
        """Indices (subset of ``members``, sorted) that move to the new
        cluster.

        2-means (torch Lloyd, 20 iterations) initialised deterministically
        with the first member's feature and the member farthest from it;
        the side that does *not* hold ``members[0]`` moves.
        When 2-means leaves a side empty (identical features), a random half
        (``floor(n / 2)`` members, drawn with ``seed`` and ``num_splits``)
        moves instead."""
        if members.numel() >= 2:
            feats = self.bank[members].float()
            far = int(((feats - feats[0])**2).sum(1).argmax())
            init = torch.stack([feats[0], feats[far]])
            labels = kmeans(feats, 2, num_iters=20, backend='torch',
                            init_centroids=init).labels.to(members.device)
            second = members[labels != labels[0]]
            if 0 < second.numel() < members.numel():
                return second
        perm = torch.randperm(
            members.numel(),
            generator=seeded_generator(self.seed,
                                       host_scalar(self, 'num_splits')))
        return members[perm[:members.numel() // 2].to(members.device)]

    @torch.no_grad()
    def _small_cluster_delta(self):
        """Rank 0: (indices, new labels, touched clusters) of the whole
        small-cluster pass, applied to a copy of the label bank."""
        labels = self.label_bank.clone()
        k = self.num_clusters
        hist = torch.bincount(labels, minlength=k)
        is_small = hist < self.min_cluster
        small = torch.nonzero(is_small).flatten()
        keep = torch.nonzero(~is_small).flatten()
        # 1) dissolve: members of small clusters -> nearest kept centroid
        moved = torch.nonzero(is_small[labels]).flatten()
        touched = set()
        if moved.numel():
            score = self.bank[moved].float() @ self.centroids[keep].float().t()
            labels[moved] = keep[score.argmax(1)]
            touched.update(labels[moved].tolist())
        # 2) refill each now-empty cluster by splitting the largest one
        for e in small.tolist():
            hist = torch.bincount(labels, minlength=k)
            big = int(hist.argmax())
            if int(hist[big]) < 2:
                warnings.warn('ClusterMemory: no cluster has 2 members to '
                              f'split; cluster {e} stays empty')
                continue
            members = torch.nonzero(labels == big).flatten()
            second = self._split(members)
            set_host_scalar(self, 'num_splits',
                            host_scalar(self, 'num_splits') + 1)
            labels[second] = e
            touched.update((big, e))
        changed = torch.nonzero(labels != self.label_bank).flatten()
        touched.update(small.tolist())
        return changed, labels[changed], torch.tensor(
            sorted(touched), dtype=torch.long)

    @torch.no_grad()
    def deal_with_small_clusters(self) -> int:
        """Dissolve clusters under ``min_cluster`` and refill them by
        splitting the largest (see the class docstring). Rank 0 decides and
        broadcasts (changed indices, their labels, touched clusters); the
        centroids of the touched clusters are then refreshed. Returns the
        number of small clusters handled (same on every rank)."""
        if self.min_cluster <= 0:
            return 0
        hist = self.histogram()
        num_small = int((hist < self.min_cluster).sum())
        if num_small == self.num_clusters:
            warnings.warn('ClusterMemory: every cluster is smaller than '
                          f'min_cluster={self.min_cluster}; nothing done')
        if num_small in (0, self.num_clusters):
            return 0
        packed = None
        if dist.get_rank() == 0:
            changed, new_labels, touched = self._small_cluster_delta()
            packed = torch.cat([
                torch.tensor([changed.numel(),
                              host_scalar(self, 'num_splits')],
                             device=changed.device),
                changed, new_labels, touched.to(changed.device)
            ]).cpu()
        packed = broadcast_from_rank0(packed)
        n = int(packed[0])
        set_host_scalar(self, 'num_splits', int(packed[1]))
        changed, new_labels, touched = packed[2:].to(
            self.label_bank.device).split([n, n, packed.numel() - 2 - 2 * n])
        self.label_bank[changed] = new_labels
        self.update_centroids(touched)
        return num_small
