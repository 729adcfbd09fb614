"""FIFO queue of keys (MoCo-style negatives), with wrap-around."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmssl_ext.registry import MODELS
from mmssl_ext.utils.dist import all_gather_cat
from mmssl_ext.utils.host_state import (host_scalar, register_host_scalar,
                                        set_host_scalar)
from .feature_memory import finite_rows


@MODELS.register_module()
class FeatureQueue(nn.Module):
    """A ring buffer of ``length`` keys, replicated on every rank.

    :meth:`enqueue` all-gathers the keys of every rank (rank order) and
    writes them at ``ptr``, wrapping around the end, so any global batch
    size works (no ``length % batch == 0`` requirement; an odd last batch
    is fine). A global batch longer than the queue keeps its last
    ``length`` keys. The oldest entries are overwritten first.

    Args:
        length (int): number of keys L.
        feat_dim (int): key dim D.
        seed (int): seed of the random initial content (unit-norm Gaussian
            rows), identical on every rank.

    Buffers (persistent): ``queue`` (L, D), ``ptr`` long scalar (next slot).
    """

    def __init__(self, length: int, feat_dim: int, seed: int = 0):
        super().__init__()
        if length < 1 or feat_dim < 1:
            raise ValueError(f'length={length} and feat_dim={feat_dim} must '
                             'be >= 1')
        self.length, self.feat_dim = int(length), int(feat_dim)
        g = torch.Generator().manual_seed(int(seed))
        q = torch.randn(self.length, self.feat_dim, generator=g)
        self.register_buffer('queue', F.normalize(q, dim=1))
        register_host_scalar(self, 'ptr', 0)

    def extra_repr(self) -> str:
        return f'length={self.length}, feat_dim={self.feat_dim}'

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """Push this rank's ``keys`` (B, D) after all-gathering them (every
        rank must call it)."""
        if keys.dim() != 2 or keys.size(1) != self.feat_dim:
            raise ValueError(f'enqueue expects (B, {self.feat_dim}) keys, got '
                             f'{tuple(keys.shape)}')
        keys = all_gather_cat(F.normalize(keys.detach().float(),
                                          dim=1)).to(self.queue)
        n = keys.size(0)
        p = host_scalar(self, 'ptr')
        if n > self.length:
            skipped = n - self.length
            keys = keys[skipped:]
            p = (p + skipped) % self.length
            n = self.length
        slots = (p + torch.arange(n, device=self.queue.device)) % self.length
        # a non-finite key keeps the old slot (see finite_rows)
        self.queue[slots] = torch.where(finite_rows(keys), keys,
                                        self.queue[slots])
        set_host_scalar(self, 'ptr', (p + n) % self.length)

    def forward(self) -> torch.Tensor:
        """A detached copy of the queue (L, D)."""
        return self.queue.clone().detach()
