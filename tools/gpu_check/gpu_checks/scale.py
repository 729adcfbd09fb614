"""Check 3: the shared machinery at ImageNet scale on the device: the
torch k-means of the clustering hooks (1.28M x 128, K = 10,000, 20
iterations), InterCLR's semi-hard negative pool and InvP's background
search over a 1.28M bank."""
import statistics
import time

from .common import sync


def _peak_reset(device):
    import torch
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats()
        return torch.cuda.memory_allocated()
    return 0


def _peak_gib(device, base):
    import torch
    if device.type != 'cuda':
        return None
    return round((torch.cuda.max_memory_allocated() - base) / 2**30, 3)


def kmeans_item(device, n: int, dim: int, k: int, iters: int,
                pca_dim: int = -1) -> dict:
    """The clustering hooks' call: ``kmeans(feats, K, num_iters, 'torch',
    normalize=True[, pca_dim])`` on random features already on the
    device (as ``extract_features`` leaves them)."""
    import torch

    from mmssl_ext.models.utils.kmeans import kmeans
    g = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(n, dim, device=device, generator=g)
    base = _peak_reset(device)
    sync(device)
    t0 = time.perf_counter()
    res = kmeans(x, k, num_iters=iters, backend='torch', normalize=True,
                 pca_dim=pca_dim, seed=0)
    sync(device)
    seconds = time.perf_counter() - t0
    sizes = torch.bincount(res.labels, minlength=k)
    problems = []
    if res.labels.device.type != device.type:
        problems.append(f'labels on {res.labels.device}')
    if not bool(torch.isfinite(res.centroids).all()):
        problems.append('non-finite centroids')
    return dict(n=n, dim=dim, k=k, iterations=iters, pca_dim=pca_dim,
                seconds=round(seconds, 2),
                peak_extra_gib=_peak_gib(device, base),
                empty_clusters=int((sizes == 0).sum()),
                largest_cluster=int(sizes.max()), problems=problems)


def _timed_calls(fn, device, warmup: int, calls: int):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(calls):
        sync(device)
        t0 = time.perf_counter()
        out = fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return out, times


def semihard_item(device, n: int, k: int, batch: int, pool: int,
                  neg: int, calls: int) -> dict:
    """InterCLR's default sampler on a unit-norm bank with random labels:
    ``SemiHardNegativeSampler(neg, pool)`` for a batch of queries."""
    import torch
    import torch.nn.functional as F

    from mmssl_ext.models.interclr.neg_sampling import SemiHardNegativeSampler
    g = torch.Generator(device=device).manual_seed(0)
    bank = F.normalize(torch.randn(n, 128, device=device, generator=g), dim=1)
    labels = torch.randint(0, k, (n, ), device=device, generator=g)
    q = F.normalize(torch.randn(batch, 128, device=device, generator=g),
                    dim=1)
    qlab = labels[:batch]
    sampler = SemiHardNegativeSampler(neg, pool)
    base = _peak_reset(device)
    negs, times = _timed_calls(
        lambda: sampler(q, bank, labels, qlab, generator=g), device, 1,
        calls)
    problems = []
    if tuple(negs.shape) != (batch, neg):
        problems.append(f'shape {tuple(negs.shape)}')
    if bool((labels[negs] == qlab.view(-1, 1)).any()):
        problems.append('a same-label negative was drawn')
    if negs.device.type != device.type:
        problems.append(f'negatives on {negs.device}')
    return dict(n=n, k=k, batch=batch, pool=pool, neg_num=neg,
                calls=calls,
                ms_per_call=round(1e3 * statistics.median(times), 2),
                peak_extra_gib=_peak_gib(device, base), problems=problems)


def background_item(device, n: int, batch: int, m: int, calls: int) -> dict:
    """InvP's per-iteration background search: the top-``m`` bank entries
    of each query (``knn_search``, torch backend)."""
    import torch
    import torch.nn.functional as F

    from mmssl_ext.models.utils.knn import knn_search
    g = torch.Generator(device=device).manual_seed(0)
    bank = F.normalize(torch.randn(n, 128, device=device, generator=g), dim=1)
    q = F.normalize(torch.randn(batch, 128, device=device, generator=g),
                    dim=1)
    base = _peak_reset(device)
    (v, i), times = _timed_calls(
        lambda: knn_search(q, bank, m, backend='torch'), device, 1, calls)
    ref = (q @ bank.t()).topk(m, dim=1).values
    problems = []
    if not torch.allclose(v, ref, atol=1e-5):
        problems.append('top-k values differ from a direct topk')
    return dict(n=n, batch=batch, k=m, calls=calls,
                ms_per_call=round(1e3 * statistics.median(times), 2),
                peak_extra_gib=_peak_gib(device, base), problems=problems)
