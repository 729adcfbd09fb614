"""Replicated N x D feature bank (NPID, CLD; the base of InvP's, ODC's and
InterCLR's memories)."""
import math
from typing import Dict, Tuple

import torch
import torch.nn.functional as F

from mmssl_ext.registry import MODELS
from mmssl_ext.utils.host_state import (host_scalar, register_host_scalar,
                                        set_host_scalar)
from mmssl_ext.utils.seeding import seeded_generator
from .base import BaseMemory


def finite_rows(f: torch.Tensor) -> torch.Tensor:
    """(B, 1) bool: rows of ``f`` that are all finite.

    Memories never write a NaN/Inf row into replicated state (a bank or a
    queue: once there, it would poison every later similarity and every
    checkpoint): such a row keeps its old value, decided on the device
    without reading anything back. The run itself is stopped, naming the
    iteration and the loss, by ``NonFiniteLossHook`` (in the default
    runtime): non-finite features come from a diverged encoder, whose loss
    is then non-finite too."""
    return torch.isfinite(f).all(1, keepdim=True)


_INITS = ('random', 'uniform', 'data')


@MODELS.register_module()
class FeatureMemory(BaseMemory):
    """An (N, D) bank of features, one row per data-set sample (see
    :mod:`mmssl_ext.models.memories.base` for the contract).

    Update rule (MMSelfSup convention: ``momentum`` weights the NEW feature;
    1.0 replaces the entry, InterCLR; 0.5 is NPID/ODC)::

        f = normalize(feat)                                   # batch feature
        bank[i] = normalize((1 - momentum) * bank[i] + momentum * f)

    Lemniscate/InvP/CLD write ``m * old + (1 - m) * new``: convert with
    ``momentum = 1 - m``.

    Args:
        length (int): N, the training set length.
        feat_dim (int): D.
        momentum (float): weight of the new feature, in (0, 1].
            Defaults to 0.5.
        init (str): ``'random'`` (unit-norm Gaussian rows), ``'uniform'``
            (InvP's authors: ``U[-a, a]`` with ``a = 1 / sqrt(D / 3)``, rows
            not normalised, norm about 1) or ``'data'`` (zeros until
            :meth:`init_bank` is called with extracted features; ``update``
            refuses to run before). The random draws use ``seed`` and are
            identical on every rank.
        seed (int): seed of the random initialisation. Defaults to 0.

    Buffers (persistent): ``bank`` (N, D) float, ``initialized`` bool scalar.
    """

    def __init__(self,
                 length: int,
                 feat_dim: int,
                 momentum: float = 0.5,
                 init: str = 'random',
                 seed: int = 0):
        super().__init__(length)
        if feat_dim < 1:
            raise ValueError(f'feat_dim={feat_dim} must be >= 1')
        if not 0. < momentum <= 1.:
            raise ValueError(f'momentum={momentum} must be in (0, 1] (it '
                             'weights the new feature; 1.0 = replace)')
        if init not in _INITS:
            raise ValueError(f'init={init!r} must be one of {_INITS}')
        self.feat_dim = int(feat_dim)
        self.momentum = float(momentum)
        self.init, self.seed = init, int(seed)
        shape, g = (self.length, self.feat_dim), seeded_generator(self.seed)
        if init == 'random':
            bank = F.normalize(torch.randn(shape, generator=g), dim=1)
        elif init == 'uniform':
            a = 1. / math.sqrt(self.feat_dim / 3.)
            bank = torch.rand(shape, generator=g) * 2 * a - a
        else:
            bank = torch.zeros(shape)
        self.register_buffer('bank', bank)
        register_host_scalar(self, 'initialized', init != 'data')

    def extra_repr(self) -> str:
        return (f'length={self.length}, feat_dim={self.feat_dim}, '
                f'momentum={self.momentum}, init={self.init!r}')

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
        set_host_scalar(self, 'initialized', True)

    def is_initialized(self) -> bool:
        """Whether the bank holds data (a Python value: no host sync)."""
        return host_scalar(self, 'initialized')

    def gather_features(self, idx: torch.Tensor, feats: torch.Tensor,
                        *rows: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Check the feature dim, normalise ``feats`` and gather
        ``(idx, normalize(feats), *rows)`` from every rank
        (:meth:`~mmssl_ext.models.memories.base.BaseMemory.gather`)."""
        if feats.size(1) != self.feat_dim:
            raise ValueError(f'feature dim {feats.size(1)} != memory '
                             f'feat_dim {self.feat_dim}')
        return self.gather(idx, F.normalize(feats.detach().float(), dim=1),
                           *rows)

    @torch.no_grad()
    def blend(self, idx: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        """Apply the momentum rule to gathered, unique ``idx`` with unit-norm
        ``f``; returns the new rows."""
        self.check_idx(idx)
        if not self.is_initialized():
            raise RuntimeError(
                "FeatureMemory(init='data') was not initialised: call "
                'init_bank (e.g. from an offline clustering hook) first')
        f = f.to(self.bank)
        m = self.momentum
        old = self.bank[idx]
        new = f if m == 1. else F.normalize((1. - m) * old + m * f, dim=1)
        new = torch.where(finite_rows(f), new, old)
        self.bank[idx] = new
        return new

    @torch.no_grad()
    def update(self, idx: torch.Tensor,
               feats: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Momentum-update the rows ``idx`` with ``feats`` of this rank's
        batch (every rank must call it: it all-gathers)."""
        self.blend(*self.gather_features(idx, feats))
        return {}

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Rows ``idx`` of the bank (no gradient)."""
        return self.bank[idx.to(self.bank.device)]
