"""One chunked top-k cosine / inner-product search, used everywhere a method
needs nearest neighbours against a bank: kNN evaluation, InvP's neighbour
table and background set, InterCLR's semi-hard negative pool.

Memory stays bounded whatever the bank size: queries are processed in chunks
of ``query_chunk`` rows and the bank in chunks of ``bank_chunk`` rows, so the
largest temporary is ``query_chunk x bank_chunk`` similarities plus the running
``query_chunk x k`` top-k. For a large ``k`` (``k > bank_chunk // 4``, e.g.
InterCLR's semi-hard pool of 10 % of the bank) merging per-chunk top-k lists
costs more than one selection over whole rows, so the torch backend then
scores whole bank rows for as many queries as fit in ``ROW_BUDGET`` bytes
(at least one query) and selects once per row.

faiss is used with ``backend='auto'`` when installed, ``largest`` and ``k <=
FAISS_MAX_K`` (beyond it faiss' heaps are slower than the torch selection):
``IndexFlatIP`` for CPU tensors, and a GPU flat index for CUDA tensors when
faiss has GPU support and sees a GPU (faiss-gpu without a GPU reports 0
GPUs; we count them ourselves). torch otherwise (any device).
"""
import functools
from typing import Tuple

import torch

from mmssl_ext.utils.host_state import value_checks

#: bytes of query x bank similarities scored at once in whole-row mode
ROW_BUDGET = 256 * 2**20
#: largest k sent to faiss by ``backend='auto'`` (faiss GPU caps k at 2048)
FAISS_MAX_K = 1024


@functools.lru_cache(maxsize=None)
def import_faiss():
    """The faiss module, or None when it is not installed."""
    try:
        import faiss
    except ImportError:
        return None
    return faiss


def faiss_num_gpus() -> int:
    """GPUs faiss can really use: 0 without a GPU faiss build, without
    ``torch.cuda`` devices, or when faiss is missing."""
    faiss = import_faiss()  # CPU builds have get_num_gpus() == 0 too
    if faiss is None or not torch.cuda.is_available():
        return 0
    try:
        return int(faiss.get_num_gpus())
    except Exception:  # pragma: no cover
        return 0


def _check(query: torch.Tensor, bank: torch.Tensor, k: int) -> None:
    if query.size(1) != bank.size(1):
        raise ValueError(f'query dim {query.size(1)} != bank dim '
                         f'{bank.size(1)}')
    if not 1 <= k <= bank.size(0):
        raise ValueError(f'k={k} must be in [1, bank size={bank.size(0)}]: '
                         'lower the number of neighbours (k / topk) or use '
                         'a larger bank')
    if value_checks(query) and (not torch.isfinite(query).all()
                                or not torch.isfinite(bank).all()):
        raise ValueError('knn_search got non-finite (NaN/Inf) features')


@torch.no_grad()
def _torch_topk(query, bank, k, query_chunk, bank_chunk, largest):
    n, device = query.size(0), query.device
    out_v = torch.empty(n, k, dtype=query.dtype, device=device)
    out_i = torch.empty(n, k, dtype=torch.long, device=device)
    bank = bank.to(device=device, dtype=query.dtype)
    if k > bank_chunk // 4:
        # whole-row mode: one bank chunk, one selection per query, as many
        # queries at once as ROW_BUDGET allows
        per_row = bank.size(0) * query.element_size()
        query_chunk = max(1, min(query_chunk, ROW_BUDGET // max(per_row, 1)))
        bank_chunk = bank.size(0)
    for qs in range(0, n, query_chunk):
        q = query[qs:qs + query_chunk]
        best_v = best_i = None
        for bs in range(0, bank.size(0), bank_chunk):
            sim = q @ bank[bs:bs + bank_chunk].t()
            v, i = sim.topk(min(k, sim.size(1)), dim=1, largest=largest)
            del sim  # one similarity block alive at a time
            i = i + bs
            if best_v is None:
                best_v, best_i = v, i
            else:
                # the first chunk already gave k columns (k <= bank_chunk)
                best_v, sel = torch.cat([best_v, v], 1).topk(
                    k, dim=1, largest=largest)
                best_i = torch.cat([best_i, i], 1).gather(1, sel)
        out_v[qs:qs + query_chunk] = best_v
        out_i[qs:qs + query_chunk] = best_i
    return out_v, out_i


@torch.no_grad()
def _faiss_topk(query, bank, k, query_chunk):
    faiss = import_faiss()
    import numpy as np
    d = bank.size(1)
    if query.is_cuda and faiss_num_gpus() > 0 and k <= 2048:  # pragma: no cover
        res = faiss.StandardGpuResources()
        cfg = faiss.GpuIndexFlatConfig()
        cfg.device = query.device.index or 0
        index = faiss.GpuIndexFlatIP(res, d, cfg)
    else:
        index = faiss.IndexFlatIP(d)
    index.add(np.ascontiguousarray(bank.detach().float().cpu().numpy()))
    vals, idxs = [], []
    for qs in range(0, query.size(0), query_chunk):
        q = query[qs:qs + query_chunk].detach().float().cpu().numpy()
        v, i = index.search(np.ascontiguousarray(q), k)
        vals.append(torch.from_numpy(v))
        idxs.append(torch.from_numpy(i))
    return (torch.cat(vals).to(query.device, query.dtype),
            torch.cat(idxs).to(query.device))


def knn_search(query: torch.Tensor,
               bank: torch.Tensor,
               k: int,
               query_chunk: int = 1024,
               bank_chunk: int = 65536,
               largest: bool = True,
               backend: str = 'auto') -> Tuple[torch.Tensor, torch.Tensor]:
    """Top-k inner-product neighbours of every query row in ``bank``.

    Args:
        query (Tensor): (Q, D) queries.
        bank (Tensor): (N, D) bank.
        k (int): neighbours per query, ``1 <= k <= N``.
        query_chunk (int): queries per chunk (>= 1).
        bank_chunk (int): bank rows per chunk (>= 1, torch backend).
        largest (bool): most similar (True) or least similar (False).
        backend (str): ``'auto'`` (faiss when installed, ``largest`` and
            ``k <= FAISS_MAX_K``, for CPU tensors or CUDA tensors with a GPU
            faiss), ``'torch'`` or ``'faiss'``.

    Returns:
        tuple(Tensor, Tensor): (Q, k) similarities sorted in descending order
        (ascending if ``largest=False``) and their (Q, k) bank indices.
    """
    if backend not in ('auto', 'torch', 'faiss'):
        raise ValueError(f"backend must be 'auto', 'torch' or 'faiss', got "
                         f'{backend!r}')
    if query_chunk < 1 or bank_chunk < 1:
        raise ValueError('query_chunk and bank_chunk must be >= 1, got '
                         f'{query_chunk} and {bank_chunk}')
    _check(query, bank, k)
    use_faiss = backend == 'faiss' or (
        backend == 'auto' and largest and k <= FAISS_MAX_K
        and import_faiss() is not None
        and (query.device.type == 'cpu' or faiss_num_gpus() > 0))
    if use_faiss:
        if import_faiss() is None:
            raise ImportError("backend='faiss' needs faiss (pip install "
                              'faiss-cpu)')
        if not largest:
            raise ValueError("backend='faiss' only supports largest=True")
        return _faiss_topk(query, bank, k, query_chunk)
    return _torch_topk(query, bank, k, query_chunk, bank_chunk, largest)
