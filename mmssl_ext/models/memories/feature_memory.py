"""Replicated N x D feature memory (NPID's bank; the base of ODC's and
InterCLR's cluster memory)."""
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmssl_ext.registry import MODELS
from mmssl_ext.utils.dist import all_gather_cat


def check_finite(f: torch.Tensor, where: str) -> None:
    """Refuse to write NaN/Inf features into replicated state (a bank or a
    queue): once there, they would poison every later similarity and every
    checkpoint."""
    if not bool(torch.isfinite(f).all()):
        raise FloatingPointError(
            f'{where}: non-finite (NaN/Inf) features; refusing to write '
            'them into the memory (the loss or the encoder diverged: lower '
            'the learning rate or check the input data)')

_INITS = ('random', 'data')


def last_occurrence(idx: torch.Tensor) -> torch.Tensor:
    """Positions of the last occurrence of every distinct value of ``idx``
    (sorted by value): a deterministic choice when a global batch holds the
    same sample twice (sampling with replacement, DefaultSampler round-up)."""
    uniq, inv = torch.unique(idx, return_inverse=True)
    pos = torch.arange(idx.numel(), device=idx.device)
    last = torch.full((uniq.numel(), ), -1, dtype=torch.long,
                      device=idx.device)
    return last.scatter_reduce(0, inv, pos, reduce='amax')


@MODELS.register_module()
class FeatureMemory(nn.Module):
    """An (N, D) bank of unit-norm features, one row per data-set sample,
    replicated on every rank and stored in the checkpoint.

    Update rule (MMSelfSup convention: ``momentum`` weights the NEW feature;
    1.0 replaces the entry, InterCLR; 0.5 is NPID/ODC)::

        f = normalize(feat)                                   # batch feature
        bank[i] = normalize((1 - momentum) * bank[i] + momentum * f)

    applied to the (index, feature) pairs all-gathered from every rank, in
    rank order, so every replica performs the same update (no broadcast).
    If the global batch holds an index twice, its last occurrence wins.
    Lemniscate/InvP/CLD write ``m * old + (1 - m) * new``: convert with
    ``momentum = 1 - m``.

    Args:
        length (int): N, must equal the training set length
            (:meth:`check_length`).
        feat_dim (int): D.
        momentum (float): weight of the new feature, in (0, 1].
            Defaults to 0.5.
        init (str): ``'random'`` (unit-norm Gaussian rows drawn with
            ``seed``, identical on every rank) or ``'data'`` (zeros until
            :meth:`init_bank` is called with extracted features; ``update``
            refuses to run before).
        seed (int): seed of the random initialisation. Defaults to 0.

    Buffers (persistent): ``bank`` (N, D) float, ``initialized`` bool scalar.
    """

    def __init__(self,
                 length: int,
                 feat_dim: int,
                 momentum: float = 0.5,
                 init: str = 'random',
                 seed: int = 0):
        super().__init__()
        if length < 1 or feat_dim < 1:
            raise ValueError(f'length={length} and feat_dim={feat_dim} must '
                             'be >= 1')
        if not 0. < momentum <= 1.:
            raise ValueError(f'momentum={momentum} must be in (0, 1] (it '
                             'weights the new feature; 1.0 = replace)')
        if init not in _INITS:
            raise ValueError(f'init={init!r} must be one of {_INITS}')
        self.length, self.feat_dim = int(length), int(feat_dim)
        self.momentum = float(momentum)
        self.init, self.seed = init, int(seed)
        if init == 'random':
            g = torch.Generator().manual_seed(self.seed)
            bank = F.normalize(
                torch.randn(self.length, self.feat_dim, generator=g), dim=1)
        else:
            bank = torch.zeros(self.length, self.feat_dim)
        self.register_buffer('bank', bank)
        self.register_buffer('initialized', torch.tensor(init == 'random'))

    def extra_repr(self) -> str:
        return (f'length={self.length}, feat_dim={self.feat_dim}, '
                f'momentum={self.momentum}, init={self.init!r}')

    def check_length(self, n: int, key: str = 'length') -> None:
        """Raise a ValueError naming ``key`` unless the bank has ``n`` rows
        (``n`` = the training set length)."""
        if int(n) != self.length:
            raise ValueError(
                f'{key}={self.length} but the training data set has {n} '
                f'samples: set {key}={n} (the memory holds one row per '
                'sample)')

    def _check_idx(self, idx: torch.Tensor) -> None:
        if idx.numel() and (int(idx.min()) < 0
                            or int(idx.max()) >= self.length):
            raise IndexError(
                f'sample indices must be in [0, {self.length}), got range '
                f'[{int(idx.min())}, {int(idx.max())}]: the memory length '
                'does not match the data set')

    @torch.no_grad()
    def init_bank(self, feats: torch.Tensor) -> None:
        """Fill the bank with ``normalize(feats)`` ((N, D), data-set order,
        the same on every rank)."""
        if tuple(feats.shape) != (self.length, self.feat_dim):
            raise ValueError(f'init_bank expects ({self.length}, '
                             f'{self.feat_dim}) features, got '
                             f'{tuple(feats.shape)}')
        if not torch.isfinite(feats).all():
            raise ValueError('init_bank got non-finite (NaN/Inf) features')
        self.bank.copy_(F.normalize(feats.detach().to(self.bank), dim=1))
        self.initialized.fill_(True)

    @torch.no_grad()
    def gather(self, idx: torch.Tensor,
               feats: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """All-gather ``(idx, normalize(feats))`` (rank order), drop repeated
        indices (keep the last) and move them to the bank's device."""
        if idx.dim() != 1 or feats.dim() != 2 or idx.numel() != feats.size(0):
            raise ValueError(f'update expects idx (B,) and feats (B, D), got '
                             f'{tuple(idx.shape)} and {tuple(feats.shape)}')
        if feats.size(1) != self.feat_dim:
            raise ValueError(f'feature dim {feats.size(1)} != memory '
                             f'feat_dim {self.feat_dim}')
        f = F.normalize(feats.detach().float(), dim=1)
        idx = all_gather_cat(idx.long().to(f.device))
        f = all_gather_cat(f)
        # after the gather, so that every rank raises at the same step
        check_finite(f, 'FeatureMemory.update')
        idx, f = idx.to(self.bank.device), f.to(self.bank)
        keep = last_occurrence(idx)
        return idx[keep], f[keep]

    @torch.no_grad()
    def blend(self, idx: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        """Apply the momentum rule to already gathered, unique ``idx`` with
        unit-norm ``f``; returns the new rows."""
        self._check_idx(idx)
        if not bool(self.initialized):
            raise RuntimeError(
                "FeatureMemory(init='data') was not initialised: call "
                'init_bank (e.g. from an offline clustering hook) first')
        m = self.momentum
        new = f if m == 1. else F.normalize(
            (1. - m) * self.bank[idx] + m * f, dim=1)
        self.bank[idx] = new
        return new

    @torch.no_grad()
    def update(self, idx: torch.Tensor, feats: torch.Tensor) -> None:
        """Momentum-update the rows ``idx`` with ``feats`` of this rank's
        batch (all ranks must call it: it all-gathers)."""
        self.blend(*self.gather(idx, feats))

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Rows ``idx`` of the bank (no gradient)."""
        return self.bank[idx.to(self.bank.device)]
