"""Distributed helpers shared by every method (one place, thin over
:mod:`mmengine.dist`).

All functions work without a process group (world size 1: they return their
input, or a detached copy of it) and on any device: communication goes
through :mod:`mmengine.dist`, which moves tensors to the backend's device
(CPU for gloo, CUDA for NCCL) and back to the input's device.

Conventions
-----------
* Gathered tensors are concatenated along dim 0 in **rank order**, so every
  rank sees the same global batch in the same order. Replicated state
  (memory banks, queues) updated from that batch by a deterministic rule stays
  identical on every rank without any broadcast.
* Rank-0-only work (2-means, k-means) broadcasts its *small* result with
  :func:`broadcast_from_rank0`; never a whole bank per iteration.
"""
from typing import List, Optional, Sequence

import torch
from mmengine import dist

__all__ = [
    'all_gather_cat', 'all_gather_with_grad', 'broadcast_from_rank0',
    'get_sample_idx'
]


def _gather_sizes(n: int, device: torch.device) -> List[int]:
    size = torch.tensor([n], dtype=torch.long, device=device)
    return [int(s.item()) for s in dist.all_gather(size)]


def _gather_padded(t: torch.Tensor, sizes: List[int]) -> List[torch.Tensor]:
    """all_gather of dim-0 slices whose lengths differ between ranks."""
    max_n = max(sizes)
    if t.size(0) < max_n:
        pad = t.new_zeros((max_n - t.size(0), ) + tuple(t.shape[1:]))
        t = torch.cat([t, pad], 0)
    parts = dist.all_gather(t.contiguous())
    return [p[:n] for p, n in zip(parts, sizes)]


@torch.no_grad()
def all_gather_cat(t: torch.Tensor) -> torch.Tensor:
    """Gather ``t`` from every rank and concatenate along dim 0 (rank order).

    No gradient flows through the result. The dim-0 sizes may differ between
    ranks (an odd last batch): sizes are exchanged first and the tensors are
    zero-padded for the collective, then trimmed. All other dims must match.

    Args:
        t (Tensor): (n_r, ...) tensor on this rank, any device and dtype.

    Returns:
        Tensor: (sum_r n_r, ...) on ``t``'s device; with world size 1 a
        detached view of ``t``.
    """
    t = t.detach()
    if dist.get_world_size() == 1:
        return t
    sizes = _gather_sizes(t.size(0), t.device)
    return torch.cat(_gather_padded(t, sizes), 0)


class _GatherWithGrad(torch.autograd.Function):
    """all_gather along dim 0 whose backward returns this rank's slice of
    the *sum over ranks* of the incoming gradients."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        sizes = _gather_sizes(x.size(0), x.device)
        ctx.sizes = sizes
        ctx.rank = dist.get_rank()
        return torch.cat(_gather_padded(x.detach(), sizes), 0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op='sum')
        start = sum(ctx.sizes[:ctx.rank])
        return grad[start:start + ctx.sizes[ctx.rank]]


def all_gather_with_grad(t: torch.Tensor) -> torch.Tensor:
    """All-gather along dim 0 (rank order) keeping the gradient path.

    Gradient convention: every rank computes its own loss on the gathered
    tensor; the backward sums the gradients of all ranks' losses
    (``all_reduce``) and returns this rank's slice. Together with DDP's
    gradient averaging this yields the gradient of the mean of the per-rank
    losses, including the cross-rank terms (MMPretrain's SimCLR
    ``GatherLayer`` omits the all-reduce and therefore drops them).

    Dim-0 sizes may differ between ranks. World size 1 returns ``t`` itself.
    """
    if dist.get_world_size() == 1:
        return t
    return _GatherWithGrad.apply(t)


def broadcast_from_rank0(t: Optional[torch.Tensor]) -> torch.Tensor:
    """Return rank 0's ``t`` on every rank (a small result: labels, indices,
    centroids).

    Shape and dtype are taken from rank 0, so other ranks may pass ``None``
    or a placeholder of any shape; the result is on the placeholder's device
    (CPU when ``None``). Rank 0 gets ``t`` back unchanged. World size 1:
    returns ``t``.
    """
    rank = dist.get_rank()  # 0 without a process group
    if rank == 0 and t is None:
        raise ValueError('broadcast_from_rank0 needs a tensor on rank 0')
    if dist.get_world_size() == 1:
        return t
    meta = [(tuple(t.shape), t.dtype) if rank == 0 else None]
    dist.broadcast_object_list(meta, src=0)
    shape, dtype = meta[0]
    device = t.device if t is not None else torch.device('cpu')
    if rank == 0:
        buf = t.detach().contiguous().clone()
    else:
        buf = torch.empty(shape, dtype=dtype, device=device)
    if buf.numel() > 0:
        dist.broadcast(buf, src=0)
    return t if rank == 0 else buf


_IDX_HELP = ('each data sample must carry its data set index as the metainfo '
             "key 'sample_idx': end the train pipeline with "
             "dict(type='PackInputs') (it keeps 'sample_idx' by default; if "
             "you set meta_keys, include 'sample_idx') and use a data set "
             'derived from mmengine BaseDataset (it fills sample_idx)')


def get_gt_labels(data_samples: Sequence) -> Optional[torch.Tensor]:
    """Single-label ground truth of a batch as a LongTensor (B,), or None
    when a sample carries none (unlabelled data). For monitoring only."""
    if not data_samples:
        return None
    out = []
    for ds in data_samples:
        lab = getattr(ds, 'gt_label', None)
        if lab is None or torch.as_tensor(lab).numel() != 1:
            return None
        out.append(torch.as_tensor(lab).view(-1)[:1])
    # one concatenation on the labels' device (no per-sample read-back)
    return torch.cat(out).long()


def get_sample_idx(data_samples: Sequence,
                   device: Optional[torch.device] = None,
                   length: Optional[int] = None,
                   key: str = 'model.memory.length') -> torch.Tensor:
    """Data-set indices of a batch, as a LongTensor (B,).

    The indices are Python integers until they are copied to ``device``
    (a copy that does not wait for the GPU queue), so the range check
    against ``length`` costs no host synchronisation.

    Args:
        data_samples (Sequence[DataSample]): the batch's data samples
            (``PackInputs`` puts ``sample_idx`` in their metainfo).
        device (torch.device, optional): device of the result (CPU if None).
        length (int, optional): the memory length N; every index must be in
            ``[0, N)``.
        key (str): the config key of ``length``, named by the error.

    Raises:
        ValueError: when ``data_samples`` is None/empty or a sample lacks
            ``sample_idx`` (the message says which transform to add), or
            an index is outside ``[0, length)`` (the message names
            ``key``).
    """
    if data_samples is None or len(data_samples) == 0:
        raise ValueError(f'no data samples were given: {_IDX_HELP}')
    out = []
    for i, ds in enumerate(data_samples):
        idx = getattr(ds, 'sample_idx', None)  # a metainfo field
        if idx is None:
            raise ValueError(
                f'data sample {i} of the batch has no sample_idx: {_IDX_HELP}')
        out.append(int(idx))
    if length is not None and (min(out) < 0 or max(out) >= length):
        raise ValueError(
            f'sample_idx in [{min(out)}, {max(out)}] but {key}={length}: set '
            'it to the training set length (the memory holds one row per '
            'sample)')
    idx = torch.tensor(out, dtype=torch.long)
    return idx if device is None else idx.to(device, non_blocking=True)
