"""Feature bank plus a per-sample nearest-neighbour table (InvP)."""
from typing import Dict

import torch

from mmssl_ext.registry import MODELS
from ..memories.feature_memory import FeatureMemory


def nearest_others(ranked: torch.Tensor, idx: torch.Tensor,
                   k: int) -> torch.Tensor:
    """The ``k`` nearest bank entries of every anchor other than itself:
    the first ``k`` of the top ``k + 1`` entries ``ranked`` (sorted by
    decreasing similarity), the anchor -- if among them -- replaced by the
    ``(k + 1)``-th (InvP's authors' ``update_nn``).

    Args:
        ranked (Tensor): (B, >= k+1) bank indices, most similar first.
        idx (Tensor): (B,) anchor indices.
        k (int): neighbours per row.

    Returns:
        Tensor: (B, k) long.
    """
    nei = ranked[:, :k + 1]
    backup = nei[:, k:k + 1].expand_as(nei)
    nei = torch.where(nei == idx.view(-1, 1), backup, nei)
    return nei[:, :k]


@MODELS.register_module()
class NeighbourMemory(FeatureMemory):
    """:class:`FeatureMemory` + ``neighbours`` (N, k): the k nearest bank
    entries of every sample (itself excluded), InvP's kNN graph.

    The table starts at zero (the authors' choice) and only the rows of the
    batch are refreshed, from a similarity search the algorithm already ran
    against the bank *before* this update (InvP's background search):
    ``update(idx, feats, ranked)`` writes ``nearest_others(ranked, idx, k)``
    into the table rows and blends the features into the bank, both from
    the all-gathered batch.

    Args:
        length (int): N, the training set length.
        feat_dim (int): D.
        num_neighbours (int): k (InvP: 4).
        momentum, init, seed: see :class:`FeatureMemory`.

    Buffers (persistent): those of :class:`FeatureMemory` and
    ``neighbours`` (N, k) long.
    """

    def __init__(self, length: int, feat_dim: int, num_neighbours: int = 4,
                 **kwargs):
        super().__init__(length, feat_dim, **kwargs)
        if not 1 <= num_neighbours < self.length:
            raise ValueError(f'num_neighbours={num_neighbours} must be in '
                             f'[1, length={self.length})')
        self.num_neighbours = int(num_neighbours)
        self.register_buffer(
            'neighbours',
            torch.zeros(self.length, self.num_neighbours, dtype=torch.long))

    def extra_repr(self) -> str:
        return super().extra_repr() + f', num_neighbours={self.num_neighbours}'

    @torch.no_grad()
    def update(self, idx: torch.Tensor, feats: torch.Tensor,
               ranked: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Refresh the table rows ``idx`` from ``ranked`` ((B, >= k+1) bank
        indices sorted by decreasing similarity to ``feats``) and blend
        ``feats`` into the bank; every rank must call it."""
        nei = nearest_others(ranked, idx.to(ranked.device),
                             self.num_neighbours)
        idx, f, nei = self.gather_features(idx, feats, nei)
        self.blend(idx, f)  # checks idx before any write
        self.neighbours[idx] = nei.to(self.neighbours)
        return {}
