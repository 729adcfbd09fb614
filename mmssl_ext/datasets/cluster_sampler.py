"""Sampler of the clustering baselines: sampling with replacement (ODC) and
cluster-uniform sampling (DeepCluster's ``unif_sampling``)."""
from typing import Optional, Sized

import torch
from mmengine.dataset import DefaultSampler

from mmssl_ext.registry import DATA_SAMPLERS


@DATA_SAMPLERS.register_module()
class ClusterSampler(DefaultSampler):
    """:class:`mmengine.dataset.DefaultSampler` (epoch-seeded, same global
    order on every rank, each rank a strided slice) with two extra modes:

    * ``replace=True``: each epoch draws ``len(dataset)`` indices uniformly
      *with* replacement (ODC / InterCLR's ``replace=True``).
    * cluster-uniform (after :meth:`set_uniform_indices`, called by
      :class:`~mmssl_ext.engine.hooks.OfflineClusterHook` with
      ``uniform_sampling=True``): each of the K' non-empty clusters
      contributes ``N // K' + 1`` indices (drawn with replacement when the
      cluster has at most that many members, without otherwise), the list
      is shuffled and cut to N (DeepCluster's uniform label sampler). The labels are a copy pushed by the hook in the main
      process, where PyTorch runs the sampler, so persistent workers do not
      matter; the hook pushes them again after a resume.

    Args:
        dataset (Sized): the data set.
        shuffle (bool): shuffle (plain mode). Defaults to True.
        seed (int, optional): shared seed (synchronised when None).
        round_up (bool): pad to a multiple of the world size.
        replace (bool): sample with replacement (plain mode).
    """

    def __init__(self,
                 dataset: Sized,
                 shuffle: bool = True,
                 seed: Optional[int] = None,
                 round_up: bool = True,
                 replace: bool = False) -> None:
        super().__init__(dataset, shuffle=shuffle, seed=seed,
                         round_up=round_up)
        self.replace = replace
        self.labels: Optional[torch.Tensor] = None
        self.num_clusters = 0

    def set_uniform_indices(self, labels: torch.Tensor,
                            num_clusters: int) -> None:
        """Switch to cluster-uniform sampling with these labels (N,)."""
        labels = torch.as_tensor(labels).long().view(-1).cpu()
        if labels.numel() != len(self.dataset):
            raise ValueError(f'{labels.numel()} labels for a data set of '
                             f'{len(self.dataset)} samples')
        self.labels, self.num_clusters = labels, int(num_clusters)

    def _global_indices(self, g: torch.Generator) -> torch.Tensor:
        n = len(self.dataset)
        if self.labels is not None:
            sizes = torch.bincount(self.labels, minlength=self.num_clusters)
            per = n // int((sizes > 0).sum()) + 1
            order = torch.argsort(self.labels, stable=True)
            chunks = []
            for members in order.split(sizes.tolist()):
                size = members.numel()
                if size == 0:
                    continue
                pick = (torch.randint(0, size, (per, ), generator=g)
                        if size <= per else
                        torch.randperm(size, generator=g)[:per])
                chunks.append(members[pick])
            idx = torch.cat(chunks)
            return idx[torch.randperm(idx.numel(), generator=g)][:n]
        if self.replace:
            return torch.randint(0, n, (n, ), generator=g)
        if self.shuffle:
            return torch.randperm(n, generator=g)
        return torch.arange(n)

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        indices = self._global_indices(g).tolist()
        if self.round_up:
            indices = (indices *
                       int(self.total_size / len(indices) + 1))[:self.total_size]
        return iter(indices[self.rank:self.total_size:self.world_size])
