import pytest
import torch

from mmssl_ext.models.utils.knn import knn_search

try:
    import faiss  # noqa: F401
    HAS_FAISS = True
except ImportError:  # pragma: no cover
    HAS_FAISS = False

BACKENDS = ['torch'] + (['faiss'] if HAS_FAISS else [])


def _brute(q, b, k, largest=True):
    sim = q @ b.t()
    return sim.topk(k, dim=1, largest=largest)


def _data(nq=37, nb=101, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(nq, d, generator=g), torch.randn(nb, d, generator=g)


@pytest.mark.parametrize('backend', BACKENDS)
@pytest.mark.parametrize('query_chunk,bank_chunk', [(1, 7), (5, 16),
                                                    (3, 40), (64, 1000),
                                                    (1024, 10)])
def test_equals_brute_force(backend, query_chunk, bank_chunk):
    # (64, 1000) and (1024, 10): fewer queries than a chunk; with torch,
    # k <= bank_chunk // 4 merges per-chunk top-k lists (e.g. k=5 with
    # (3, 40): 3 bank chunks), larger k selects over whole rows
    q, b = _data()
    for k in (1, 5, 101):
        v, i = knn_search(q, b, k, query_chunk=query_chunk,
                          bank_chunk=bank_chunk, backend=backend)
        bv, bi = _brute(q, b, k)
        assert v.shape == i.shape == (37, k)
        torch.testing.assert_close(v, bv, atol=1e-5, rtol=1e-5)
        # indices equal (random data: no ties) and consistent with values
        assert torch.equal(i, bi)
        torch.testing.assert_close((q.unsqueeze(1) * b[i]).sum(-1), v,
                                   atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('bank_chunk', [3, 20, 50, 1000])
def test_smallest_torch(bank_chunk):
    q, b = _data()
    v, i = knn_search(q, b, 4, bank_chunk=bank_chunk, largest=False,
                      backend='torch')
    bv, bi = _brute(q, b, 4, largest=False)
    torch.testing.assert_close(v, bv)
    assert torch.equal(i, bi)


@pytest.mark.parametrize('backend', BACKENDS)
def test_normalised_inputs_give_cosine(backend):
    """Inner product of L2-normalised rows (what the callers pass) is the
    cosine similarity of the raw rows, whatever their scale."""
    q, b = _data()
    qn = torch.nn.functional.normalize(q, dim=1)
    bn = torch.nn.functional.normalize(b, dim=1)
    v, i = knn_search(torch.nn.functional.normalize(q * 3, dim=1),
                      torch.nn.functional.normalize(b * 7, dim=1), 3,
                      backend=backend)
    bv, bi = _brute(qn, bn, 3)
    torch.testing.assert_close(v, bv, atol=1e-5, rtol=1e-5)
    assert torch.equal(i, bi)


@pytest.mark.parametrize('backend', BACKENDS)
def test_k_larger_than_bank_is_a_clear_error(backend):
    q, b = _data(nb=10)
    with pytest.raises(ValueError, match=r'k=11 .*bank size=10'):
        knn_search(q, b, 11, backend=backend)
    with pytest.raises(ValueError, match='k=0'):
        knn_search(q, b, 0, backend=backend)


def test_input_errors():
    q, b = _data()
    with pytest.raises(ValueError, match='dim'):
        knn_search(q, b[:, :4], 2)
    with pytest.raises(ValueError, match='backend'):
        knn_search(q, b, 2, backend='annoy')
    with pytest.raises(ValueError, match='chunk'):
        knn_search(q, b, 2, query_chunk=0)
    q[0, 0] = float('nan')
    with pytest.raises(ValueError, match='NaN'):
        knn_search(q, b, 2)


def test_whole_row_mode_respects_row_budget(monkeypatch):
    from mmssl_ext.models.utils import knn
    q, b = _data(nq=9, nb=101)
    # budget of 2 rows of similarities: 5 passes over the 9 queries
    monkeypatch.setattr(knn, 'ROW_BUDGET', 2 * 101 * 4)
    v, i = knn_search(q, b, 60, bank_chunk=16, backend='torch')
    bv, bi = _brute(q, b, 60)
    torch.testing.assert_close(v, bv)
    assert torch.equal(i, bi)


def test_auto_backend_large_k_uses_torch(monkeypatch):
    from mmssl_ext.models.utils import knn
    calls = []
    monkeypatch.setattr(knn, '_faiss_topk',
                        lambda *a: calls.append(1) or (_ for _ in ()).throw(
                            AssertionError('faiss used')))
    q, b = _data(nb=101)
    monkeypatch.setattr(knn, 'FAISS_MAX_K', 10)
    knn_search(q, b, 50)  # auto -> torch, no error
    assert calls == []
