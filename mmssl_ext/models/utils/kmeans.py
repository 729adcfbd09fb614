"""One k-means for the whole package.

* :func:`kmeans` clusters a data set (offline clustering hooks, ODC's
  2-means split). Backends: faiss (CPU, or GPU when faiss was built with GPU
  support **and** a GPU is visible: faiss-gpu's ``Kmeans(gpu=True)`` silently
  runs on the CPU otherwise, so we count GPUs ourselves) and a pure-torch
  Lloyd implementation (any device, chunked so the largest temporary is
  ``chunk_size x k``).
* :func:`batch_kmeans` clusters the rows of a mini-batch (CLD's group
  branch): batched over a leading group dim, any device, and differentiable
  through the returned centroids.

Conventions (both backends of :func:`kmeans`):

* Lloyd iterations: ``num_iters`` times (assign every point to its nearest
  centroid, then move each centroid to the mean of its points); the returned
  labels are a final assignment against the returned centroids.
* Initialisation: ``k`` distinct rows drawn with ``seed``
  (``init='random'``, DeepCluster/faiss' default), seeded k-means++
  (``init='k-means++'``), or ``init_centroids``. Same seed, same result.
* Empty clusters (torch backend; faiss-style split): the largest cluster's
  centroid is duplicated with a symmetric ``1 +- 1/1024`` perturbation and
  the two copies share its points in the next assignment (faiss draws the
  cluster to split at random in proportion to its size; we take the largest,
  lowest id on ties, so no random state is consumed).
* ``spherical=True``: centroids are L2-normalised after each update and
  points are assigned by maximum inner product; otherwise by squared
  Euclidean distance.
* ``pca_dim > 0``: PCA-whitening to ``pca_dim`` dims followed by row L2
  normalisation, as DeepCluster preprocesses its features (faiss
  ``PCAMatrix(eigen_power=-0.5)``); ``normalize=True`` only L2-normalises.
  Returned centroids live in the preprocessed space.
"""
from typing import NamedTuple, Optional

import numpy as np
import torch
import torch.nn.functional as F

from mmssl_ext.utils.host_state import value_checks
from .knn import faiss_num_gpus, import_faiss

__all__ = ['KMeansResult', 'kmeans', 'batch_kmeans', 'pca_whiten',
           'faiss_num_gpus']

_EPS_SPLIT = 1. / 1024


class KMeansResult(NamedTuple):
    """Result of :func:`kmeans` / :func:`batch_kmeans`.

    Attributes:
        centroids (Tensor): (K, D) (or (G, K, D) for batched input).
        labels (Tensor): (N,) (or (G, N)) long cluster index of every row.
    """
    centroids: torch.Tensor
    labels: torch.Tensor


def pca_whiten(x: torch.Tensor, dim: int,
               chunk_size: int = 65536) -> torch.Tensor:
    """Project centred ``x`` on its top ``dim`` principal axes and scale
    each axis to unit variance (eigenvalue^-1/2), in float64.

    The mean, the covariance and the projection are computed ``chunk_size``
    rows at a time, so the float64 working copies are ``chunk_size x D``,
    not ``N x D`` (DeepCluster's 1.28M x 2048 ImageNet features: 2 x 21 GB
    on the GPU otherwise)."""
    n, d = x.shape
    if not 1 <= dim <= d:
        raise ValueError(f'pca_dim={dim} must be in [1, feature dim {d}]')
    mean = x.new_zeros(1, d, dtype=torch.float64)
    for s in range(0, n, chunk_size):
        mean += x[s:s + chunk_size].double().sum(0, keepdim=True)
    mean /= max(n, 1)
    cov = x.new_zeros(d, d, dtype=torch.float64)
    for s in range(0, n, chunk_size):
        xc = x[s:s + chunk_size].double() - mean
        cov += xc.t() @ xc
    cov /= max(n, 1)
    evals, evecs = torch.linalg.eigh(cov)  # ascending
    evals = evals.flip(0)[:dim]
    evecs = evecs.flip(1)[:, :dim]
    # fix the sign of each axis (largest |component| positive): deterministic
    sign = torch.sign(evecs.gather(0, evecs.abs().argmax(0, keepdim=True)))
    evecs = evecs * torch.where(sign == 0, torch.ones_like(sign), sign)
    floor = evals.max().clamp(min=1e-30) * 1e-10
    proj = evecs / evals.clamp(min=floor).sqrt()
    out = x.new_empty(n, dim)
    for s in range(0, n, chunk_size):
        out[s:s + chunk_size] = (
            (x[s:s + chunk_size].double() - mean) @ proj).to(x.dtype)
    return out


def _kmeans_pp(x, k, g):
    """k-means++ seeding (Arthur & Vassilvitskii): each next centre is drawn
    with probability proportional to the squared distance to the nearest
    centre chosen so far."""
    n = x.size(0)
    first = int(torch.randint(0, n, (1, ), generator=g))
    centres = [first]
    d2 = ((x - x[first])**2).sum(1)
    for _ in range(1, k):
        w = d2.double().cpu().clamp(min=0)
        if float(w.sum()) <= 0:  # all points coincide with centres
            w = torch.ones(n, dtype=torch.double)
            w[centres] = 0
        j = int(torch.multinomial(w, 1, generator=g))
        centres.append(j)
        d2 = torch.minimum(d2, ((x - x[j])**2).sum(1))
    return x[torch.tensor(centres, device=x.device)].clone()


@torch.no_grad()
def _assign(x, c, spherical, chunk_size):
    """Nearest centroid of every row (chunked)."""
    labels = torch.empty(x.size(0), dtype=torch.long, device=x.device)
    half_sq = None if spherical else 0.5 * (c * c).sum(1)
    ct = c.t().contiguous()
    for s in range(0, x.size(0), chunk_size):
        xs = x[s:s + chunk_size]
        if spherical:
            score = xs @ ct
        else:  # argmin |x-c|^2 == argmax x.c - |c|^2/2
            score = torch.addmm(half_sq.unsqueeze(0), xs, ct, alpha=1,
                                beta=-1)
        labels[s:s + chunk_size] = score.argmax(1)
    return labels


@torch.no_grad()
def _cluster_sums(x, labels, k, chunk_size):
    counts = torch.bincount(labels, minlength=k)
    sums = torch.zeros(k, x.size(1), dtype=x.dtype, device=x.device)
    if x.device.type == 'cpu':
        sums.index_add_(0, labels, x)  # deterministic on CPU
    else:  # one-hot matmul: deterministic on GPU (index_add_ uses atomics)
        for s in range(0, x.size(0), chunk_size):
            oh = F.one_hot(labels[s:s + chunk_size], k).to(x.dtype)
            sums += oh.t() @ x[s:s + chunk_size]
    return sums, counts


def _split_empty(c, counts):
    """Give every empty cluster half of the largest one (faiss-style;
    updates ``c`` and ``counts`` in place)."""
    sign = torch.ones(c.size(1), device=c.device, dtype=c.dtype)
    sign[1::2] = -1
    for e in torch.nonzero(counts == 0).flatten().tolist():
        big = int(counts.argmax())
        base = c[big].clone()
        c[e] = base * (1 + _EPS_SPLIT * sign)
        c[big] = base * (1 - _EPS_SPLIT * sign)
        half = counts[big] // 2
        counts[e] = half
        counts[big] -= half


@torch.no_grad()
def _torch_kmeans(x, k, num_iters, spherical, seed, init_centroids,
                  chunk_size):
    if init_centroids is None:  # k distinct rows
        g = torch.Generator().manual_seed(int(seed))
        init_centroids = x[torch.randperm(x.size(0), generator=g)[:k].to(
            x.device)]
    c = init_centroids.clone()
    if spherical:
        c = F.normalize(c, dim=1)
    prev = None
    for _ in range(num_iters):
        labels = _assign(x, c, spherical, chunk_size)
        if prev is not None and torch.equal(labels, prev):
            break  # fixed point: further iterations change nothing
        prev = labels
        sums, counts = _cluster_sums(x, labels, k, chunk_size)
        nonempty = counts > 0
        c = torch.where(nonempty.unsqueeze(1),
                        sums / counts.clamp(min=1).unsqueeze(1).to(x.dtype), c)
        if not nonempty.all():
            _split_empty(c, counts)
        if spherical:
            c = F.normalize(c, dim=1)
    return KMeansResult(c, _assign(x, c, spherical, chunk_size))


def _faiss_kmeans(x, k, num_iters, spherical, seed, init_centroids):
    xn = np.ascontiguousarray(x.cpu().numpy(), dtype=np.float32)
    n, d = xn.shape
    km = import_faiss().Kmeans(
        d, k, niter=num_iters, seed=int(seed), spherical=spherical,
        gpu=faiss_num_gpus() > 0, verbose=False,
        max_points_per_centroid=max(1, (n + k - 1) // k),  # no subsampling
        min_points_per_centroid=1)
    if init_centroids is not None:
        init_centroids = np.ascontiguousarray(init_centroids.cpu().numpy())
    km.train(xn, init_centroids=init_centroids)
    c = torch.from_numpy(np.ascontiguousarray(km.centroids)).to(x.device)
    return KMeansResult(c, _assign(x, c, spherical, 2048))


def kmeans(x: torch.Tensor,
           k: int,
           num_iters: int = 20,
           backend: str = 'auto',
           spherical: bool = False,
           pca_dim: int = -1,
           seed: int = 0,
           key: str = 'num_clusters',
           normalize: bool = False,
           init_centroids: Optional[torch.Tensor] = None,
           chunk_size: int = 2048,
           init: str = 'random') -> KMeansResult:
    """k-means of the rows of ``x`` (see the module docstring).

    Args:
        x (Tensor): (N, D) features, any device; no gradient.
        k (int): number of clusters, ``1 <= k <= N``.
        num_iters (int): Lloyd iterations. Defaults to 20 (DeepCluster).
        backend (str): ``'auto'`` (faiss when installed, else torch),
            ``'faiss'`` or ``'torch'``.
        spherical (bool): unit-norm centroids, inner-product assignment.
        pca_dim (int): PCA-whitening dim then L2 normalisation; ``-1`` off.
        seed (int): seed of the initialisation.
        key (str): config key named in the ``k > N`` error message.
        normalize (bool): L2-normalise the rows first (ignored when
            ``pca_dim > 0``, which always normalises).
        init_centroids (Tensor, optional): (k, D') initial centroids in the
            preprocessed space; overrides the seeded draw.
        chunk_size (int): rows per chunk of the torch backend (2048: the
            (chunk, k) score block stays cache-friendly; faster than larger
            chunks on CPU).
        init (str): ``'random'`` (k distinct rows; faiss' own draw for the
            faiss backend, DeepCluster's behaviour) or ``'k-means++'``
            (seeded, computed in torch and handed to either backend, so
            both start from the same centroids).

    Returns:
        KMeansResult: ``centroids`` (k, D') float32 and ``labels`` (N,)
        long, on ``x``'s device.

    Raises:
        ValueError: ``k > N`` (naming ``key`` and N), non-finite features,
            unknown ``backend``.
        ImportError: ``backend='faiss'`` without faiss.
    """
    if backend not in ('auto', 'faiss', 'torch'):
        raise ValueError(f"backend must be 'auto', 'faiss' or 'torch', got "
                         f'{backend!r}')
    if num_iters < 0:
        raise ValueError(f'num_iters must be >= 0, got {num_iters}')
    if init not in ('random', 'k-means++'):
        raise ValueError(f"init must be 'random' or 'k-means++', got "
                         f'{init!r}')
    n = x.size(0)
    if k > n:
        raise ValueError(
            f'{key}={k} is larger than the number of samples to cluster '
            f'(data set length {n}); set {key} <= {n}')
    bad = ~torch.isfinite(x)
    if bad.any():
        raise ValueError(
            f'kmeans got non-finite (NaN/Inf) features in '
            f'{int(bad.any(1).sum())} of {n} rows; the model diverged or '
            'the extractor produced invalid outputs')
    x = x.detach().float()
    if pca_dim is not None and pca_dim > 0:
        x = F.normalize(pca_whiten(x, pca_dim), dim=1)
    elif normalize:
        x = F.normalize(x, dim=1)
    if init_centroids is not None:
        init_centroids = torch.as_tensor(init_centroids).detach().to(
            x.device, torch.float32)
    elif init == 'k-means++':
        init_centroids = _kmeans_pp(
            x, k, torch.Generator().manual_seed(int(seed)))
    if backend == 'auto':
        backend = 'faiss' if import_faiss() is not None else 'torch'
    if backend == 'faiss':
        if import_faiss() is None:
            raise ImportError("kmeans backend='faiss' needs faiss "
                              "(pip install faiss-cpu), or use backend='torch'")
        return _faiss_kmeans(x, k, num_iters, spherical, seed, init_centroids)
    return _torch_kmeans(x, k, num_iters, spherical, seed, init_centroids,
                         max(1, int(chunk_size)))


def batch_kmeans(x: torch.Tensor, k: int,
                 num_iters: int = 5) -> KMeansResult:
    """In-batch k-means, batched over an optional leading group dim and
    differentiable through the returned centroids (CLD's group branch).

    Semantics (CLD's ``KMeans``): the initial centroids are the first k rows
    (zero for the missing ones when ``k > B``: CLD's ImageNet setting, K=120
    for 64 samples per GPU); then ``num_iters`` rounds of (assign by squared
    Euclidean distance, then centroid = mean of its members); an empty
    cluster gets a **zero** centroid. The returned labels are those of the
    last assignment (made with the centroids *before* the last update) and
    the returned centroids are the last update, computed from ``x`` **with**
    its gradient (labels carry none).

    Args:
        x (Tensor): (B, D) or (G, B, D).
        k (int): clusters per group, >= 1 (may exceed B).
        num_iters (int): rounds, >= 1. Defaults to 5 (CLD).

    Returns:
        KMeansResult: centroids (k, D) / (G, k, D) and labels (B,) / (G, B).
    """
    squeeze = x.dim() == 2
    if squeeze:
        x = x.unsqueeze(0)
    g_, b, d = x.shape
    if value_checks(x) and not torch.isfinite(x).all():
        raise ValueError('batch_kmeans got non-finite (NaN/Inf) features')
    xd = x.detach()
    c = xd.new_zeros(g_, k, d)
    m = min(k, b)
    c[:, :m] = xd[:, :m]
    for it in range(num_iters):
        with torch.no_grad():
            score = 2 * torch.bmm(xd, c.transpose(1, 2)) - (c * c).sum(
                2).unsqueeze(1)
            labels = score.argmax(2)  # (G, B)
        src = x if it == num_iters - 1 else xd
        onehot = F.one_hot(labels, k).to(src.dtype)  # (G, B, k)
        counts = onehot.sum(1).clamp(min=1).unsqueeze(2)  # (G, k, 1)
        c = torch.bmm(onehot.transpose(1, 2), src) / counts
    if squeeze:
        return KMeansResult(c[0], labels[0])
    return KMeansResult(c, labels)
