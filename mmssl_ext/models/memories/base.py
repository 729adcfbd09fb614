"""The contract of per-sample state.

Some algorithms keep a row of state for every training sample: a feature
bank (NPID, InvP, CLD, ODC, InterCLR), pseudo-labels and centroids (ODC,
InterCLR, DeepCluster), a neighbour table (InvP). That state lives in
*memory* modules only -- an algorithm takes ``memory=dict(type=...)`` and
reads or writes the state through its memory; hooks reach the memories of a
model by type (:func:`find_memories`), never through the algorithm. Every
memory keeps these rules:

1. **One row per sample.** ``length`` is the training-set length N and row
   ``i`` belongs to the sample whose ``sample_idx`` is ``i``.
   :meth:`BaseMemory.check_length` raises, naming the config key, when the
   training set has another length; :class:`~mmssl_ext.engine.hooks.
   MemoryCheckHook` (in the default runtime) and the clustering hooks call
   it for every memory before training.
2. **Updates from the gathered batch.** ``update(idx, feats, ...)`` takes
   this rank's (B,) data-set indices and (B, D) features and must be called
   on every rank: :meth:`BaseMemory.gather` all-gathers the rows in rank
   order, a sample that occurs twice in the global batch keeps its last
   occurrence, and every replica applies the same writes. The state thus
   stays identical on every rank without a broadcast. ``update`` returns a
   dict of scalar diagnostics to log (empty when there is none).
3. **Rank 0 decides, and broadcasts only the decision.** What is not a pure
   function of the replicated state (k-means, cluster splits) is computed on
   rank 0; only its small result (labels, indices, centroids) is broadcast,
   never a bank.
4. **State is persistent buffers**, so the model's checkpoint holds it and a
   resumed run continues exactly. ``initialized`` (a bool, or a bool scalar
   buffer) tells whether the state holds data yet: a memory filled from
   extracted features starts empty.
"""
from typing import Dict, List, Tuple, Type

import torch
import torch.nn as nn

from mmssl_ext.utils.dist import all_gather_cat
from mmssl_ext.utils.host_state import value_checks


def last_occurrence(idx: torch.Tensor) -> torch.Tensor:
    """For every position ``p`` of ``idx`` (B,), the position of the last
    occurrence of ``idx[p]``: a deterministic choice when a global batch
    holds the same sample twice (sampling with replacement, DefaultSampler
    round-up). Taking the rows at these positions makes every duplicate
    carry the last occurrence's row, so the writes of a duplicated index
    are identical. Shapes are static (one stable sort, no ``unique``): no
    host synchronisation."""
    b = idx.numel()
    srt, order = torch.sort(idx, stable=True)
    pos = torch.arange(b, device=idx.device)
    # sorted position of the end of each run of equal values
    is_end = torch.ones(b, dtype=torch.bool, device=idx.device)
    is_end[:-1] = srt[1:] != srt[:-1]
    ends = torch.where(is_end, pos, torch.full_like(pos, b))
    run_end = ends.flip(0).cummin(0).values.flip(0)
    out = torch.empty_like(order)
    out[order] = order[run_end]
    return out


def label_counts(labels: torch.Tensor, k: int) -> torch.Tensor:
    """(k,) long counts of the values of ``labels`` (ints in ``[0, k)``):
    ``torch.bincount(labels, minlength=k)`` without its host
    synchronisation (CUDA's bincount reads the maximum back to size its
    output; here the size is known)."""
    labels = labels.view(-1)
    return torch.zeros(k, dtype=torch.long,
                       device=labels.device).scatter_add_(
                           0, labels, torch.ones_like(labels))


class BaseMemory(nn.Module):
    """Base of the memories: length, length check, gathered batch rows.

    Args:
        length (int): N, the training-set length (one row per sample).
    """

    def __init__(self, length: int):
        super().__init__()
        if int(length) < 1:
            raise ValueError(f'length={length} must be >= 1 (the training '
                             'set length)')
        self.length = int(length)

    @property
    def device(self) -> torch.device:
        return next(self.buffers()).device

    def check_length(self, n: int, key: str = 'length') -> None:
        """Raise a ValueError naming ``key`` unless the memory has ``n``
        rows (``n`` = the training set length)."""
        if int(n) != self.length:
            raise ValueError(
                f'{key}={self.length} but the training data set has {n} '
                f'samples: set {key}={n} (the memory holds one row per '
                'sample)')

    def check_idx(self, idx: torch.Tensor) -> None:
        """Raise an IndexError unless every index is in ``[0, length)``.

        Runs where it costs no GPU stall (CPU tensors, or CUDA tensors in
        debug mode: :func:`~mmssl_ext.utils.host_state.value_checks`); the
        algorithms check the batch's indices on the host before they reach
        the device (:func:`~mmssl_ext.utils.dist.get_sample_idx`, an error
        naming ``model.memory.length``)."""
        if idx.numel() and value_checks(idx) and (
                int(idx.min()) < 0 or int(idx.max()) >= self.length):
            raise IndexError(
                f'sample indices must be in [0, {self.length}), got range '
                f'[{int(idx.min())}, {int(idx.max())}]: the memory length '
                'does not match the data set')

    @torch.no_grad()
    def gather(self, idx: torch.Tensor,
               *rows: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """All-gather this rank's ``idx`` (B,) and ``rows`` (B, ...) from
        every rank (rank order), keep the last occurrence of every index and
        move everything to this memory's device: ``(idx, *rows)``. The
        rows of a duplicated index are those of its last occurrence (all
        of its writes are then the same); the global batch keeps its length
        (static shapes, no host synchronisation)."""
        device = rows[0].device if rows else idx.device
        idx = all_gather_cat(idx.long().to(device)).to(self.device)
        last = last_occurrence(idx)
        return (idx, ) + tuple(
            all_gather_cat(r).to(idx.device)[last] for r in rows)


class ClusterState:
    """Interface of the memories that hold pseudo-labels (one cluster id per
    sample), as the clustering hooks use it:

    * ``num_clusters`` (int) and ``labels`` ((N,) long tensor);
    * ``initialized`` (and ``is_initialized()``): whether every sample
      has a label, as a Python bool (no host synchronisation);
    * ``online_labels``: whether ``update`` relabels the samples it
      touches (then :class:`~mmssl_ext.engine.hooks.ClusterMemoryHook`
      maintains centroids and cluster sizes);
    * ``set_clusters(feats, labels)``: the result of a clustering of the
      whole training set (features (N, D) in data-set order, labels (N,)),
      identical on every rank;
    * ``histogram()``: the (K,) cluster sizes.
    """
    num_clusters: int
    labels: torch.Tensor
    online_labels: bool = False

    def set_clusters(self, feats, labels) -> None:  # pragma: no cover
        raise NotImplementedError

    def set_num_clusters(self, num_clusters: int) -> None:
        """Set K (constructor), checking ``1 <= K <= length``."""
        if not 1 <= num_clusters <= self.length:
            raise ValueError(
                f'num_clusters={num_clusters} must be in [1, length='
                f'{self.length}] (the data set length)')
        self.num_clusters = int(num_clusters)

    def label_quality(self, true_labels: torch.Tensor) -> Dict[str, float]:
        """NMI and purity of the pseudo-labels against ``true_labels``
        (monitoring: ``DiagnosticsHook``); empty before the first
        clustering."""
        from mmssl_ext.evaluation.functional import pseudo_label_quality
        if not self.is_initialized():
            return {}
        return pseudo_label_quality(self.labels, true_labels)

    def histogram(self) -> torch.Tensor:
        """Cluster sizes (K,) long."""
        return label_counts(self.labels, self.num_clusters)

    def check_labels(self, labels) -> torch.Tensor:
        """``labels`` as a (N,) long tensor on this memory's device; raise
        unless it has one label in ``[0, num_clusters)`` per sample."""
        labels = torch.as_tensor(labels).long().view(-1)
        if labels.numel() != self.length:
            raise ValueError(f'expected {self.length} labels (one per '
                             f'sample), got {labels.numel()}')
        if int(labels.min()) < 0 or int(labels.max()) >= self.num_clusters:
            raise ValueError(f'labels must be in [0, {self.num_clusters})')
        return labels.to(self.device)


def build_memory(cfg, kind: Type = None, **defaults) -> BaseMemory:
    """Build a memory from its config in the mmssl_ext scope (whatever the
    config's ``default_scope``), the ``defaults`` filling what it leaves
    out; an already built memory is returned as it is. With ``kind``, raise
    a TypeError unless the memory is one."""
    from mmssl_ext.registry import MODELS
    if not isinstance(cfg, nn.Module):
        cfg = dict(defaults, **cfg)
        cfg.setdefault('_scope_', 'mmssl_ext')
        cfg = MODELS.build(cfg)
    kind = kind or BaseMemory
    if not isinstance(cfg, kind):
        raise TypeError(f'model.memory must be a {kind.__name__}, got '
                        f'{type(cfg).__name__}')
    return cfg


def find_memories(model: nn.Module,
                  kind: Type = BaseMemory) -> List[Tuple[str, nn.Module]]:
    """``(name, module)`` of every memory of ``model`` that is a ``kind``
    (outermost first; a memory inside a memory is not listed)."""
    found: List[Tuple[str, nn.Module]] = []
    for name, module in model.named_modules():
        if isinstance(module, kind) and not any(
                name.startswith(f'{n}.') for n, _ in found):
            found.append((name, module))
    return found


def check_memories(model: nn.Module, n: int) -> None:
    """Check every memory of ``model`` against a training set of ``n``
    samples (errors name ``model.<memory>.length``)."""
    for name, memory in find_memories(model):
        memory.check_length(n, key=f'model.{name}.length')
