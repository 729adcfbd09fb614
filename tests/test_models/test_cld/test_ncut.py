"""K-way normalized cuts (CLD's ``grouping='ncut'``) on toy graphs."""
import math

import numpy as np
import pytest
import torch

from mmssl_ext.models.cld.ncut import (kway_normcuts, label_means,
                                         ncut_affinity, spectral_clustering)


def test_affinity_by_hand():
    f = torch.tensor([[1., 0.], [0., 2.], [3., -3.]])
    w = ncut_affinity(f, sigma=0.5)
    c = 1 / math.sqrt(2)
    # |cos| / sigma, zero diagonal, symmetric
    expected = torch.tensor([[0., 0., c / .5], [0., 0., c / .5],
                             [c / .5, c / .5, 0.]], dtype=torch.float64)
    torch.testing.assert_close(w, expected)


def test_embedding_solves_generalized_eigenproblem():
    # 4-node path-like graph from 2-d features; check against scipy's
    # generalized symmetric eigen-solver of (D - W) v = lambda D v
    scipy_linalg = pytest.importorskip('scipy.linalg')
    f = torch.tensor([[1., 0.], [.9, .3], [.3, .9], [0., 1.]])
    w = ncut_affinity(f).numpy()
    d = np.diag(w.sum(0))
    _, v = scipy_linalg.eigh(d - w, d)
    emb = kway_normcuts(f, 3).numpy()
    assert emb.shape == (4, 3)
    ref = v[:, :3] / v[0, 0]
    # the first column is constant 1 (the trivial eigenvector)
    np.testing.assert_allclose(emb[:, 0], np.ones(4), atol=1e-8)
    for j in range(3):  # eigenvectors are defined up to sign
        s = np.sign(ref[:, j] @ emb[:, j])
        np.testing.assert_allclose(emb[:, j], s * ref[:, j], atol=1e-8)
    assert kway_normcuts(f, 10).shape == (4, 4)  # clipped to N


def test_two_blobs_are_cut_apart():
    # two groups of nearly parallel features, almost orthogonal to each
    # other: the Fiedler vector separates them and k-means on the embedding
    # returns the two groups
    f = torch.tensor([[1., .05, 0.], [1., 0., .1], [.9, .1, .05],
                      [0., .1, 1.], [.05, 0., 1.], [0., .05, .9]],
                     requires_grad=True)
    emb = kway_normcuts(f, 2)
    fiedler = emb[:, 1]
    assert (fiedler[:3] * fiedler[3:].mean() < 0).all()
    labels, cents = spectral_clustering(f, 2, num_eigvecs=2, num_iters=5)
    assert labels.tolist() == [0, 0, 0, 1, 1, 1]
    # centroids are the means of the *features* (not of the embedding)
    torch.testing.assert_close(cents, torch.stack(
        [f[:3].mean(0), f[3:].mean(0)]).detach())
    cents.sum().backward()  # differentiable w.r.t. the features
    torch.testing.assert_close(f.grad, torch.full_like(f, 1 / 3))


def test_extra_clusters_are_empty_zero():
    f = torch.tensor([[1., 0.], [0., 1.]])
    labels, cents = spectral_clustering(f, 4, num_eigvecs=2)
    assert cents.shape == (4, 2)
    assert len(set(labels.tolist())) <= 2
    used = set(labels.tolist())
    for k in range(4):
        if k not in used:
            assert torch.equal(cents[k], torch.zeros(2))


def test_label_means_by_hand():
    x = torch.tensor([[1., 2.], [3., 4.], [5., 8.]])
    m = label_means(x, torch.tensor([2, 0, 2]), 3)
    torch.testing.assert_close(
        m, torch.tensor([[3., 4.], [0., 0.], [3., 5.]]))


def test_bad_args_are_checked_where_they_enter():
    """ncut's arguments enter through CLDGroupHead, which checks them."""
    from mmssl_ext.models.cld import CLDGroupHead
    with pytest.raises(ValueError, match='num_eigvecs'):
        CLDGroupHead(num_groups=2, grouping='ncut', num_eigvecs=0)
    with pytest.raises(ValueError, match='ncut_sigma'):
        CLDGroupHead(num_groups=2, grouping='ncut', ncut_sigma=0)
