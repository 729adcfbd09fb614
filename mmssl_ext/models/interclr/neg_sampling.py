"""Positive and negative sampling against a labelled memory bank (InterCLR).

Every sampler returns, for each anchor ``i`` with pseudo-label ``y_i``, ``K``
bank indices whose pseudo-label differs from ``y_i``. The strategies are the
ones of the InterCLR paper / official code (MMSelfSup 0.x):

``random``   (:class:`RandomNegativeSampler`)
    uniform over the whole bank; same-label draws are redrawn.
``semihard`` (:class:`SemiHardNegativeSampler`, InterCLR's default)
    pool = the ``pool_size`` bank entries most similar to the anchor
    (128,000 on ImageNet, ~10% of the bank); ``K`` (16,384) pool positions
    drawn uniformly without replacement; same-label draws redrawn from the
    pool. Deviation (degenerate clusterings): an anchor whose pool holds
    fewer than ``K`` entries of other clusters (its cluster is larger than
    the pool; the reference code then loops forever) gets the
    ``pool_size`` nearest entries *of other clusters* as its pool instead;
    the count is logged by InterCLR as ``neg_widened``.
``semieasy`` (:class:`SemiEasyNegativeSampler`)
    as ``semihard`` with the ``pool_size`` *least* similar entries.
``hard``     (:class:`HardNegativeSampler`)
    the ``K + (largest cluster size)`` most similar entries, same-label ones
    dropped, the first ``K`` (most similar) kept.

The similarity search goes through :func:`mmssl_ext.models.utils.knn.knn_search`,
chunked over queries and bank, on the device of the tensors (GPU when the
model is on GPU). The redraw of a conflicting slot picks one pool position
uniformly at random: the same distribution as the reference code's redraw
(which takes the slot's entry from a fresh without-replacement permutation),
at the cost of one ``randint`` instead of a full ``multinomial``.

All randomness comes from an optional ``torch.Generator`` so that the caller
can make sampling reproducible (InterCLRMoCo seeds it from checkpointed state,
which makes resumed runs exact).
"""
import warnings
from typing import Optional

import torch

from mmssl_ext.registry import TASK_UTILS
from ..memories.base import label_counts
from ..utils.knn import knn_search

#: Short names accepted by ``InterCLRMoCo(neg_sampling=...)``.
NEG_SAMPLING_ALIASES = {
    'random': 'RandomNegativeSampler',
    'semihard': 'SemiHardNegativeSampler',
    'semieasy': 'SemiEasyNegativeSampler',
    'hard': 'HardNegativeSampler',
}


@torch.no_grad()
def sample_positives(label_bank: torch.Tensor, labels: torch.Tensor,
                     generator: Optional[torch.Generator],
                     num_clusters: int) -> torch.Tensor:
    """One bank index per anchor, uniform over the anchor's pseudo-class.

    The anchor's own entry is a valid draw (probability ``1/|class|``), as in
    the reference code. Vectorised: one stable sort of the label bank.

    Args:
        label_bank (Tensor): (N,) long pseudo-labels of the bank.
        labels (Tensor): (B,) pseudo-labels of the anchors, taken from
            ``label_bank`` (so every one occurs there).
        generator (torch.Generator, optional): RNG on ``label_bank``'s device.
        num_clusters (int): number of clusters K (labels in ``[0, K)``).

    Returns:
        Tensor: (B,) long bank indices.
    """
    order = torch.argsort(label_bank, stable=True)
    counts = label_counts(label_bank, num_clusters)
    starts = counts.cumsum(0) - counts
    labels = labels.to(label_bank.device)
    size = counts[labels]
    # uniform position in [0, size) of the anchor's class
    u = torch.rand(size.shape, generator=generator, device=size.device,
                   dtype=torch.float64)
    return order[starts[labels] + torch.minimum((u * size).long(), size - 1)]


class BaseNegativeSampler:
    """Draws ``num_neg`` negatives per anchor from a labelled bank.

    Args:
        num_neg (int): negatives per anchor (``neg_num``).
        max_tries (int): bound on the redraw loop; reaching it raises.
        knn_backend (str): backend of :func:`knn_search`.
    """

    def __init__(self, num_neg: int, max_tries: int = 1000,
                 knn_backend: str = 'torch') -> None:
        if not isinstance(num_neg, int) or num_neg < 1:
            raise ValueError(f'neg_num must be a positive int, got '
                             f'neg_num={num_neg!r}')
        self.num_neg = num_neg
        self.max_tries = max_tries
        self.knn_backend = knn_backend

    def check_bank_length(self, length: int) -> None:
        """Raise if the strategy cannot work with a bank of ``length``."""
        if self.num_neg >= length:
            raise ValueError(f'neg_num={self.num_neg} must be smaller than '
                             f'the memory bank length {length}')

    def __call__(self, query: torch.Tensor, bank: torch.Tensor,
                 label_bank: torch.Tensor, labels: torch.Tensor,
                 generator: Optional[torch.Generator] = None
                 ) -> torch.Tensor:
        """Return (B, num_neg) long bank indices with labels != ``labels``.

        Args:
            query (Tensor): (B, D) L2-normalised anchors (no grad needed).
            bank (Tensor): (N, D) L2-normalised bank.
            label_bank (Tensor): (N,) long pseudo-labels of the bank.
            labels (Tensor): (B,) pseudo-labels of the anchors.
            generator (torch.Generator, optional): RNG on the bank's device.
        """
        raise NotImplementedError

    def _nearest(self, query: torch.Tensor, bank: torch.Tensor, k: int,
                 largest: bool = True) -> torch.Tensor:
        """(B, k) bank indices of the ``k`` entries most (``largest=False``:
        least) similar to each anchor, in similarity order."""
        # bank chunks large enough that each chunk's top-k prunes (4k), at
        # least 65,536 rows; the temporary is B x chunk
        _, idx = knn_search(
            query.detach().to(bank.dtype), bank, k, largest=largest,
            backend=self.knn_backend, bank_chunk=max(65536, 4 * k))
        return idx.to(bank.device)

    def _other_clusters_first(self, query, bank, label_bank, labels, k: int,
                              keep: int, largest: bool = True):
        """The first ``keep`` of the ``k`` nearest entries (see
        :meth:`_nearest`) with the other clusters' entries moved first
        (stable: in similarity order), and whether each is of another
        cluster: ``(indices, valid)``, both (B, keep)."""
        cand = self._nearest(query, bank, k, largest)
        same = (label_bank[cand] == labels.view(-1, 1)).to(torch.int8)
        order = torch.argsort(same, dim=1, stable=True)[:, :keep]
        return cand.gather(1, order), same.gather(1, order) == 0

    def _redraw(self, neg: torch.Tensor, label_bank: torch.Tensor,
                labels: torch.Tensor, draw) -> torch.Tensor:
        """Rejection loop: replace same-label slots by ``draw(mask)``."""
        for _ in range(self.max_tries):
            conflict = label_bank[neg] == labels.view(-1, 1)
            if not bool(conflict.any()):
                return neg
            neg = neg.clone()
            neg[conflict] = draw(conflict)
        raise RuntimeError(
            f'{type(self).__name__}: could not draw {self.num_neg} '
            f'different-label negatives in {self.max_tries} rounds; the '
            'clusters are too large for the pool (raise the pool size, or '
            'use more clusters)')


@TASK_UTILS.register_module()
class RandomNegativeSampler(BaseNegativeSampler):
    """Uniform negatives over the whole bank, same-label draws redrawn."""

    @torch.no_grad()
    def __call__(self, query, bank, label_bank, labels, generator=None):
        n, dev = label_bank.numel(), label_bank.device
        labels = labels.to(dev)
        sizes = torch.bincount(label_bank)
        if bool((sizes[labels] >= n).any()):
            raise RuntimeError('random negative sampling: an anchor\'s '
                               'cluster holds the whole bank')
        neg = torch.randint(
            n, (labels.numel(), self.num_neg), generator=generator,
            device=dev)

        def draw(mask):
            return torch.randint(
                n, (int(mask.sum()), ), generator=generator, device=dev)

        return self._redraw(neg, label_bank, labels, draw)


@TASK_UTILS.register_module()
class SemiHardNegativeSampler(BaseNegativeSampler):
    """Negatives drawn uniformly (without replacement) from the anchor's
    ``pool_size`` most similar bank entries; same-label draws redrawn from
    the pool.

    Args:
        num_neg (int): negatives per anchor. InterCLR: 16384.
        pool_size (int): nearest-neighbour pool. InterCLR: 128000.
    """
    largest = True
    pool_key = 'semihard_neg_pool_num'

    def __init__(self, num_neg: int, pool_size: int, **kwargs) -> None:
        super().__init__(num_neg, **kwargs)
        if not isinstance(pool_size, int) or pool_size < num_neg:
            raise ValueError(
                f'{self.pool_key}={pool_size!r} must be an int >= '
                f'neg_num={num_neg} (negatives are drawn from the pool '
                'without replacement)')
        self.pool_size = pool_size
        self._warned = False
        self.last_widened = 0  # anchors widened by the last call

    def check_bank_length(self, length: int) -> None:
        super().check_bank_length(length)
        if self.pool_size > length:
            raise ValueError(f'{self.pool_key}={self.pool_size} is larger '
                             f'than the memory bank length {length}')

    @torch.no_grad()
    def __call__(self, query, bank, label_bank, labels, generator=None):
        dev = bank.device
        labels = labels.to(dev)
        b, p = query.size(0), self.pool_size
        pool = self._nearest(query, bank, p, self.largest)
        pick = torch.multinomial(torch.ones(b, p, device=dev), self.num_neg,
                                 replacement=False, generator=generator)
        neg = pool.gather(1, pick)
        # rows whose pool holds fewer different-label entries than negatives
        # (their cluster fills the pool) are widened instead of redrawn
        wide = (label_bank[pool] != labels.view(-1, 1)).sum(1) < self.num_neg
        self.last_widened = int(wide.sum())
        if self.last_widened:
            rows = torch.nonzero(wide).flatten()
            neg[rows] = self._widened(query[rows], bank, label_bank,
                                      labels[rows], generator)
        rows = torch.arange(b, device=dev).view(-1, 1).expand_as(neg)

        def draw(mask):
            r = rows[mask]
            col = torch.randint(
                p, (r.numel(), ), generator=generator, device=dev)
            return pool[r, col]

        return self._redraw(neg, label_bank, labels, draw)

    def _widened(self, query, bank, label_bank, labels, generator):
        """Negatives of anchors whose pool is (nearly) all their own
        cluster: the pool becomes the ``pool_size`` entries most (semi-easy:
        least) similar to the anchor *among the other clusters* -- found in
        the ``pool_size + |largest such cluster|`` nearest entries -- and the
        negatives are drawn uniformly from it (with replacement only if the
        other clusters hold fewer than ``num_neg`` entries). The reference
        code loops forever here; the count is logged by the model and a
        warning is printed once."""
        if not self._warned:
            warnings.warn(
                f'{type(self).__name__}: the {self.pool_size}-entry pool of '
                f'{labels.numel()} anchor(s) holds fewer than '
                f'{self.num_neg} entries of other clusters (a cluster is '
                f'larger than the pool); their pool is widened to the '
                f'{self.pool_size} nearest entries of other clusters. The '
                'count is logged as neg_widened; more clusters or a larger '
                f'{self.pool_key} avoid it.')
            self._warned = True
        sizes = torch.bincount(label_bank)
        k = min(label_bank.numel(), self.pool_size + int(sizes[labels].max()))
        pool, valid = self._other_clusters_first(
            query, bank, label_bank, labels, k, self.pool_size, self.largest)
        if not bool(valid.any(1).all()):
            raise RuntimeError(f'{type(self).__name__}: an anchor\'s '
                               'cluster holds the whole bank')
        replace = bool((valid.sum(1) < self.num_neg).any())
        pick = torch.multinomial(valid.float(), self.num_neg,
                                 replacement=replace, generator=generator)
        return pool.gather(1, pick)


@TASK_UTILS.register_module()
class SemiEasyNegativeSampler(SemiHardNegativeSampler):
    """As :class:`SemiHardNegativeSampler` with the ``pool_size`` *least*
    similar entries as the pool. InterCLR ablation; pool 128000."""
    largest = False
    pool_key = 'semieasy_neg_pool_num'


@TASK_UTILS.register_module()
class HardNegativeSampler(BaseNegativeSampler):
    """The most similar different-label entries: take the
    ``num_neg + largest cluster size`` nearest entries, drop those sharing
    the anchor's label, keep the first ``num_neg`` in similarity order."""

    @torch.no_grad()
    def __call__(self, query, bank, label_bank, labels, generator=None):
        max_size = int(torch.bincount(label_bank).max())
        k = min(self.num_neg + max_size, label_bank.numel())
        neg, valid = self._other_clusters_first(
            query, bank, label_bank, labels.to(bank.device), k, self.num_neg)
        if not bool(valid.all()):
            raise RuntimeError('hard negative sampling: fewer than '
                               f'neg_num={self.num_neg} different-label '
                               'entries in the bank')
        return neg


def build_neg_sampler(neg_sampling, neg_num: int,
                      semihard_neg_pool_num: int,
                      semieasy_neg_pool_num: int,
                      knn_backend: str = 'torch') -> BaseNegativeSampler:
    """Build a sampler from InterCLR's config arguments.

    ``neg_sampling`` is one of ``'random'``, ``'semihard'``, ``'semieasy'``,
    ``'hard'`` or a ``TASK_UTILS`` config dict. What the dict leaves out is
    taken from the other arguments: ``num_neg`` (``neg_num``),
    ``knn_backend`` and, for the semi-hard / semi-easy samplers,
    ``pool_size`` (``semihard_neg_pool_num`` / ``semieasy_neg_pool_num``).
    """
    if not isinstance(neg_sampling, dict):
        if neg_sampling not in NEG_SAMPLING_ALIASES:
            raise ValueError(
                f'neg_sampling={neg_sampling!r} is not one of '
                f'{sorted(NEG_SAMPLING_ALIASES)} (or a TASK_UTILS config '
                'dict)')
        neg_sampling = dict(type=NEG_SAMPLING_ALIASES[neg_sampling])
    cfg = dict(neg_sampling)
    cfg.setdefault('num_neg', neg_num)
    cfg.setdefault('knn_backend', knn_backend)
    pool = {
        'SemiHardNegativeSampler': semihard_neg_pool_num,
        'SemiEasyNegativeSampler': semieasy_neg_pool_num
    }.get(cfg.get('type'))
    if pool is not None:
        cfg.setdefault('pool_size', pool)
    # resolve in our scope whatever the config's default_scope is
    cfg.setdefault('_scope_', 'mmssl_ext')
    return TASK_UTILS.build(cfg)
