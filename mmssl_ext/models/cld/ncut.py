"""K-way normalized cuts on a mini-batch (CLD's ``grouping='ncut'``).

Behaviour of the official ``spectral_clustering.py`` of CLD, restated:

1. Affinity: ``W_ij = |cos(f_i, f_j)| / sigma``, symmetrised with
   ``max(W, W^T)``, zero diagonal.
2. Degrees ``d = W.sum(0)`` and the normalised Laplacian
   ``L = D^-1/2 (D - W) D^-1/2``.
3. Eigenvectors ``U`` of ``L`` in ascending eigenvalue order; the spectral
   embedding is ``D^-1/2 U`` (the generalized eigenvectors of
   ``(D - W) v = lambda D v``) divided by its (0, 0) entry, restricted to
   the first ``num_eigvecs`` columns.
4. k-means on the embedding rows (first-K initialisation, zero centroids
   for empty clusters: the same in-batch k-means as the k-means grouping)
   gives the cluster labels.
5. Centroids are the means of the *features* of each cluster (zero for an
   empty cluster), differentiable w.r.t. the features; the labels and the
   eigen-decomposition carry no gradient (the official code only uses the
   labels of the embedding's k-means).

Deviations, for numerical safety only: the eigen-problem is solved in
float64 with :func:`torch.linalg.eigh` (``torch.symeig`` no longer exists),
zero degrees are floored at ``1e-12``, the (0, 0) rescaling is skipped when
that entry is ~0, and ``num_eigvecs`` is clipped to the batch size.
"""
from typing import Tuple

import torch
import torch.nn.functional as F

from ..utils.kmeans import batch_kmeans


def ncut_affinity(feats: torch.Tensor, sigma: float = 1.0) -> torch.Tensor:
    """``max(W, W^T)`` with ``W = |cos| / sigma`` and a zero diagonal,
    (N, N) in float64, no gradient."""
    f = F.normalize(feats.detach().double(), dim=1)
    w = (f @ f.t()).abs() / sigma
    w = torch.maximum(w, w.t())
    w.fill_diagonal_(0.)
    return w


@torch.no_grad()
def kway_normcuts(feats: torch.Tensor, num_eigvecs: int,
                  sigma: float = 1.0) -> torch.Tensor:
    """Spectral embedding of the rows of ``feats``: (N, min(k, N)) float64.

    Column j is the generalized eigenvector of ``(D - W) v = lambda D v``
    with the j-th smallest eigenvalue (scaled so that entry (0, 0) is 1).
    """
    w = ncut_affinity(feats, sigma)
    deg = w.sum(0).clamp(min=1e-12)
    d_is = deg.rsqrt()
    lap = d_is[:, None] * (torch.diag(deg) - w) * d_is[None, :]
    _, vecs = torch.linalg.eigh(lap)  # ascending eigenvalues
    emb = d_is[:, None] * vecs
    if emb[0, 0].abs() > 1e-12:
        emb = emb / emb[0, 0]
    return emb[:, :min(int(num_eigvecs), emb.size(1))]


def label_means(x: torch.Tensor, labels: torch.Tensor,
                k: int) -> torch.Tensor:
    """(k, D) mean of the rows of ``x`` per label, zero for an absent label;
    differentiable w.r.t. ``x``."""
    onehot = F.one_hot(labels, k).to(x.dtype)  # (N, k)
    counts = onehot.sum(0).clamp(min=1).unsqueeze(1)
    return onehot.t().mm(x) / counts


def spectral_clustering(feats: torch.Tensor,
                        num_clusters: int,
                        num_eigvecs: int = 10,
                        num_iters: int = 10,
                        sigma: float = 1.0
                        ) -> Tuple[torch.Tensor, torch.Tensor]:
    """K-way normalized cuts of a batch (see the module docstring).

    Args:
        feats (Tensor): (N, D) features (gradient kept for the centroids).
        num_clusters (int): number of clusters K (may exceed N: the extra
            clusters stay empty, with zero centroids).
        num_eigvecs (int): eigenvectors of the embedding. Defaults to 10.
        num_iters (int): k-means rounds on the embedding. Defaults to 10
            (the official default; CLD's scripts pass 5).
        sigma (float): affinity scale. Defaults to 1.0.

    Returns:
        tuple: ``(labels (N,) long, centroids (K, D))``.
    """
    emb = kway_normcuts(feats, num_eigvecs, sigma)
    labels = batch_kmeans(emb, num_clusters, num_iters=num_iters).labels
    return labels, label_means(feats, labels, num_clusters)
