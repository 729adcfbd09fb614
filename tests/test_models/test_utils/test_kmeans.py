import pytest
import torch
from sklearn.metrics import adjusted_rand_score

from mmssl_ext.models.utils.kmeans import (batch_kmeans, faiss_num_gpus,
                                           kmeans, pca_whiten)

try:
    import faiss  # noqa: F401
    HAS_FAISS = True
except ImportError:  # pragma: no cover
    HAS_FAISS = False

BACKENDS = ['torch'] + (['faiss'] if HAS_FAISS else [])


def _blobs(n=600, k=6, d=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(k, d, generator=g) * 10
    labels = torch.randperm(n, generator=g) % k
    return centers[labels] + torch.randn(n, d, generator=g), labels


@pytest.mark.parametrize('backend', BACKENDS)
@pytest.mark.parametrize('spherical', [False, True])
def test_recovers_blobs(backend, spherical):
    x, y = _blobs()
    r = kmeans(x, 6, backend=backend, spherical=spherical, seed=3,
               init='k-means++')
    assert r.centroids.shape == (6, 16) and r.labels.shape == (600, )
    assert r.labels.dtype == torch.long
    assert adjusted_rand_score(y.numpy(), r.labels.numpy()) > 0.999
    if spherical:
        torch.testing.assert_close(r.centroids.norm(dim=1), torch.ones(6))


@pytest.mark.parametrize('backend', BACKENDS)
def test_seeded_reproducible(backend):
    x, _ = _blobs(n=300, k=10)
    a = kmeans(x, 12, backend=backend, seed=1)
    b = kmeans(x, 12, backend=backend, seed=1)
    assert torch.equal(a.labels, b.labels)
    assert torch.equal(a.centroids, b.centroids)


@pytest.mark.skipif(not HAS_FAISS, reason='faiss not installed')
@pytest.mark.parametrize('spherical', [False, True])
def test_faiss_and_torch_agree_on_same_init(spherical):
    x, _ = _blobs(n=400, k=5, d=8, seed=2)
    init = x[:5] + 0.1  # deliberately poor init: several iterations needed
    a = kmeans(x, 5, num_iters=10, backend='faiss', spherical=spherical,
               init_centroids=init)
    b = kmeans(x, 5, num_iters=10, backend='torch', spherical=spherical,
               init_centroids=init)
    assert torch.equal(a.labels, b.labels)
    torch.testing.assert_close(a.centroids, b.centroids, atol=1e-4,
                               rtol=1e-4)


def test_lloyd_by_hand():
    x = torch.tensor([[0.], [1.], [10.], [11.]])
    # init c = [1], [10] -> labels [0,0,1,1] -> c = [.5], [10.5]
    r = kmeans(x, 2, backend='torch', init_centroids=torch.tensor([[1.],
                                                                   [10.]]))
    torch.testing.assert_close(r.centroids, torch.tensor([[.5], [10.5]]))
    assert r.labels.tolist() == [0, 0, 1, 1]


def test_empty_cluster_is_refilled_torch():
    x = torch.tensor([[0.], [1.], [10.], [11.]])
    # centroid 2 starts far away and never gets points -> split largest
    r = kmeans(x, 3, backend='torch', num_iters=10,
               init_centroids=torch.tensor([[0.], [10.], [1000.]]))
    assert torch.bincount(r.labels, minlength=3).min() >= 1


@pytest.mark.parametrize('backend', BACKENDS)
def test_k_larger_than_n_names_key_and_length(backend):
    x = torch.randn(7, 4)
    with pytest.raises(ValueError,
                       match=r'model.memory.num_clusters=10 .*length 7'):
        kmeans(x, 10, backend=backend, key='model.memory.num_clusters')


@pytest.mark.parametrize('backend', BACKENDS)
def test_nan_rejected(backend):
    x = torch.randn(20, 4)
    x[3, 1] = float('nan')
    with pytest.raises(ValueError, match=r'NaN.* 1 of 20 rows'):
        kmeans(x, 2, backend=backend)


def test_bad_backend_and_init():
    with pytest.raises(ValueError, match='backend'):
        kmeans(torch.randn(5, 2), 2, backend='sklearn')
    with pytest.raises(ValueError, match='init'):
        kmeans(torch.randn(5, 2), 2, init='kmeans++')


def test_kmeans_pp_spreads_seeds():
    # two far groups: k-means++ puts one seed in each (0 iterations = the
    # initial centroids themselves)
    x = torch.cat([torch.zeros(50, 2), torch.full((2, 2), 100.)])
    for seed in range(5):
        r = kmeans(x, 2, num_iters=0, backend='torch', init='k-means++',
                   seed=seed)
        assert sorted(r.centroids[:, 0].tolist()) == [0., 100.]


def test_pca_whiten_by_hand():
    g = torch.Generator().manual_seed(0)
    # correlated 3-D data
    a = torch.randn(500, 3, generator=g) @ torch.tensor(
        [[3., 0., 0.], [1., 1., 0.], [0., 0., .1]])
    z = pca_whiten(a, 2)
    assert z.shape == (500, 2)
    cov = z.t() @ z / 500
    torch.testing.assert_close(cov, torch.eye(2), atol=1e-4, rtol=0)
    torch.testing.assert_close(z.mean(0), torch.zeros(2), atol=1e-5, rtol=0)
    # first axis = direction of largest variance of the centred data
    ac = a - a.mean(0)
    ev = torch.linalg.eigh(ac.t() @ ac / 500)
    top = ev.eigenvectors[:, -1]
    proj = ac @ top / ev.eigenvalues[-1].sqrt()
    assert torch.allclose(z[:, 0].abs(), proj.abs(), atol=1e-4)
    with pytest.raises(ValueError, match='pca_dim=4'):
        pca_whiten(a, 4)


def test_pca_option_normalises_rows():
    x, y = _blobs(n=300, k=3, d=16)
    r = kmeans(x, 3, backend='torch', pca_dim=8, init='k-means++')
    assert r.centroids.shape == (3, 8)
    assert adjusted_rand_score(y.numpy(), r.labels.numpy()) > 0.999


def test_faiss_gpu_detection_without_gpu():
    if not torch.cuda.is_available():
        assert faiss_num_gpus() == 0


# ------------------------------------------------------------ batch_kmeans
def test_batch_kmeans_by_hand_and_gradient():
    x = torch.tensor([[0.], [1.], [10.], [11.]], requires_grad=True)
    r = batch_kmeans(x, 2, num_iters=2)  # init: first 2 rows (0 and 1)
    # iter 1: labels [0,1,1,1] -> c = [0], [22/3]
    # iter 2: labels [0,0,1,1] -> c = [.5], [10.5]
    assert r.labels.tolist() == [0, 0, 1, 1]
    torch.testing.assert_close(r.centroids, torch.tensor([[.5], [10.5]]))
    r.centroids.sum().backward()
    torch.testing.assert_close(x.grad, torch.full((4, 1), .5))
    # labels are those of the last assignment (before the last update)
    r1 = batch_kmeans(x, 2, num_iters=1)
    assert r1.labels.tolist() == [0, 1, 1, 1]
    torch.testing.assert_close(r1.centroids.detach(),
                               torch.tensor([[0.], [22 / 3]]))


def test_batch_kmeans_empty_cluster_zero_and_batched():
    x = torch.tensor([[1.], [1.], [5.]])
    r = batch_kmeans(x, 2, num_iters=1)  # both inits equal -> all to 0
    assert r.labels.tolist() == [0, 0, 0]
    torch.testing.assert_close(r.centroids, torch.tensor([[7 / 3], [0.]]))
    g = torch.randn(3, 8, 4)
    rb = batch_kmeans(g, 3, num_iters=3)
    assert rb.centroids.shape == (3, 3, 4) and rb.labels.shape == (3, 8)
    for i in range(3):
        ri = batch_kmeans(g[i], 3, num_iters=3)
        assert torch.equal(ri.labels, rb.labels[i])
        torch.testing.assert_close(ri.centroids, rb.centroids[i])


def test_batch_kmeans_more_clusters_than_rows_and_nan():
    x = torch.nn.functional.normalize(torch.randn(16, 4), dim=1)
    r = batch_kmeans(x, 20)  # CLD ImageNet: K > batch, extra centroids zero
    assert r.centroids.shape == (20, 4)
    assert int(r.labels.max()) < 16
    with pytest.raises(ValueError, match='NaN'):
        batch_kmeans(torch.full((4, 2), float('nan')), 2)


def test_pca_whiten_chunked_equals_one_block():
    """Chunks of rows (bounded float64 copies) give the one-block result:
    same mean, covariance and projection up to float64 round-off."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1003, 6, generator=g) @ torch.randn(6, 6, generator=g)
    xd = x.double()
    xc = xd - xd.mean(0, keepdim=True)
    evals, evecs = torch.linalg.eigh(xc.t() @ xc / 1003)
    evals, evecs = evals.flip(0)[:4], evecs.flip(1)[:, :4]
    ref = (xc @ (evecs / evals.sqrt())).float()
    for chunk in (1003, 100, 7):
        z = pca_whiten(x, 4, chunk_size=chunk)
        assert z.shape == (1003, 4) and z.dtype == x.dtype
        # eigenvector signs are fixed by pca_whiten, not by eigh
        torch.testing.assert_close(z.abs(), ref.abs(), atol=1e-5, rtol=0)
    torch.testing.assert_close(pca_whiten(x, 4, chunk_size=7),
                               pca_whiten(x, 4, chunk_size=1003),
                               atol=1e-6, rtol=0)
