"""Mechanism diagnostics and the benchmarks' frozen-feature probes,
checked by hand."""
import math
import os.path as osp
import sys

import pytest
import torch

from mmssl_ext.evaluation.functional import (cluster_quality, group_purity,
                                             pseudo_label_quality,
                                             same_label_fraction)

sys.path.insert(0, osp.join(osp.dirname(__file__), '..', '..', 'benchmarks'))
from probes import few_label_knn_top1, knn_top1, linear_probe_top1  # noqa


def test_cluster_quality_by_hand():
    # clusters {0,1,2} and {3,4,5}; labels a a b | b b b
    pred = torch.tensor([0, 0, 0, 1, 1, 1])
    true = torch.tensor([7, 7, 9, 9, 9, 9])
    q = cluster_quality(pred, true)
    # purity: (2 + 3) / 6
    assert q['purity'] == pytest.approx(5 / 6)
    # H(pred) = ln 2; H(true) = -(1/3 ln 1/3 + 2/3 ln 2/3)
    h_p = math.log(2)
    h_t = -(1 / 3 * math.log(1 / 3) + 2 / 3 * math.log(2 / 3))
    # MI = sum p_ij ln(p_ij / (p_i p_j)): cells (0,a)=2/6, (0,b)=1/6,
    # (1,b)=3/6; p_i = 1/2, p_a = 1/3, p_b = 2/3
    mi = (2 / 6 * math.log((2 / 6) / (1 / 2 * 1 / 3)) +
          1 / 6 * math.log((1 / 6) / (1 / 2 * 2 / 3)) +
          3 / 6 * math.log((3 / 6) / (1 / 2 * 2 / 3)))
    assert q['nmi'] == pytest.approx(mi / ((h_p + h_t) / 2))
    assert q['num_nonempty'] == 2
    # renaming clusters changes nothing; identical partitions give 1
    assert cluster_quality(pred + 5, true)['nmi'] == pytest.approx(q['nmi'])
    assert cluster_quality(true, true)['nmi'] == pytest.approx(1.0)
    with pytest.raises(ValueError):
        cluster_quality(pred[:3], true)


def test_pseudo_label_quality_skips_unlabelled():
    pseudo = torch.tensor([-1, 0, 0, 1, 1, -1])
    true = torch.tensor([3, 0, 0, 1, 2, 3])
    q = pseudo_label_quality(pseudo, true)
    assert q['pseudo_purity'] == pytest.approx(3 / 4)
    assert pseudo_label_quality(torch.full((6, ), -1), true) == {}
    with pytest.raises(ValueError, match='memory.length'):
        pseudo_label_quality(pseudo[:4], true)


def test_same_label_fraction_and_group_purity_by_hand():
    true = torch.tensor([0, 0, 1, 1, 2])
    anchor = torch.tensor([0, 2])
    others = torch.tensor([[1, 2, 4], [3, 3, 0]])
    # anchor 0 (label 0): 1 of 3; anchor 2 (label 1): 2 of 3
    assert same_label_fraction(anchor, others, true) == pytest.approx(3 / 6)
    mask = torch.tensor([[True, False, False], [True, True, False]])
    assert same_label_fraction(anchor, others, true, mask) == 1.0
    groups = torch.tensor([0, 0, 0, 1, 1])
    labels = torch.tensor([4, 4, 5, 6, 6])
    assert group_purity(groups, labels) == pytest.approx(4 / 5)


def test_knn_probes_on_two_clusters_by_hand():
    bank = torch.tensor([[1., 0.], [0.9, 0.1], [0., 1.], [0.1, 0.9]])
    bank_y = torch.tensor([0, 0, 1, 1])
    query = torch.tensor([[1., 0.05], [0.05, 1.], [1., 0.]])
    query_y = torch.tensor([0, 1, 1])  # the last one is mislabelled
    assert knn_top1(bank, bank_y, query, query_y, k=2) == pytest.approx(
        200 / 3)
    few = few_label_knn_top1(bank, bank_y, query, query_y, per_class=1,
                             draws=3, k=1)
    assert len(few['values']) == 3
    assert all(v == pytest.approx(200 / 3) for v in few['values'])
    with pytest.raises(ValueError, match='per_class'):
        few_label_knn_top1(bank, bank_y, query, query_y, per_class=3)


def test_linear_probe_separates_separable_data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 5, generator=g)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    acc = linear_probe_top1(x[:150], y[:150], x[150:], y[150:])
    assert acc > 95
    # labels independent of the features: near chance
    y_rand = torch.randint(0, 2, (200, ), generator=g)
    assert linear_probe_top1(x[:150], y_rand[:150], x[150:],
                             y_rand[150:]) < 75
