import math

import pytest
import torch

from mmssl_ext.evaluation.functional import knn_classify, topk_accuracy


def test_weighted_vote_by_hand():
    # bank: 4 unit vectors in 2-D with labels; one query
    bank = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8], [-1.0, 0.0]])
    labels = torch.tensor([0, 1, 1, 2])
    query = torch.tensor([[2.0, 0.0]])  # normalised to (1, 0)
    # cosine sims: 1.0, 0.0, 0.6, -1.0 -> top-3: idx 0 (1.0), 2 (0.6), 1 (0.0)
    scores = knn_classify(bank, labels, query, num_classes=3, k=3, sigma=0.5,
                          backend='torch')
    expected = torch.tensor([[math.exp(1.0 / 0.5),
                              math.exp(0.6 / 0.5) + math.exp(0.0 / 0.5),
                              0.0]])
    torch.testing.assert_close(scores, expected)
    # with k=1 only the nearest neighbour votes
    s1 = knn_classify(bank, labels, query, num_classes=3, k=1, sigma=0.5)
    torch.testing.assert_close(s1, torch.tensor([[math.exp(2.0), 0., 0.]]))


@pytest.mark.parametrize('chunk', [1, 3, 1024])
def test_chunking_does_not_change_scores(chunk):
    g = torch.Generator().manual_seed(0)
    bank = torch.randn(50, 8, generator=g)
    labels = torch.randint(0, 5, (50, ), generator=g)
    query = torch.randn(7, 8, generator=g)  # fewer queries than a chunk
    ref = knn_classify(bank, labels, query, 5, k=10, sigma=0.1,
                       chunk_size=100, backend='torch')
    out = knn_classify(bank, labels, query, 5, k=10, sigma=0.1,
                       chunk_size=chunk)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_errors_name_the_parameter():
    bank, labels, q = torch.randn(4, 3), torch.tensor([0, 1, 0, 1]), \
        torch.randn(2, 3)
    with pytest.raises(ValueError, match='k=5'):
        knn_classify(bank, labels, q, 2, k=5)
    with pytest.raises(ValueError, match='sigma'):
        knn_classify(bank, labels, q, 2, k=2, sigma=0)
    with pytest.raises(ValueError, match='num_classes'):
        knn_classify(bank, torch.tensor([0, 1, 2, 3]), q, 2, k=2)
    with pytest.raises(ValueError, match='non-finite'):
        knn_classify(bank, labels, torch.full((1, 3), float('nan')), 2, k=2)


def test_topk_accuracy_by_hand():
    scores = torch.tensor([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2],
                           [0.2, 0.3, 0.5]])
    labels = torch.tensor([1, 1, 0])
    acc = topk_accuracy(scores, labels, topk=(1, 2, 5))
    assert acc['top1'] == pytest.approx(100 / 3)
    assert acc['top2'] == pytest.approx(200 / 3)
    assert acc['top5'] == pytest.approx(100.0)
