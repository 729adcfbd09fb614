import pytest
import torch

from mmssl_ext.datasets import ClusterSampler
from mmssl_testing import run_in_processes

N = 30


def test_plain_modes_match_defaultsampler_semantics():
    s = ClusterSampler(range(N), shuffle=False, seed=0)
    assert list(s) == list(range(N))
    s = ClusterSampler(range(N), shuffle=True, seed=0)
    a = list(s)
    assert sorted(a) == list(range(N))
    assert list(s) == a  # same epoch, same order
    s.set_epoch(1)
    assert list(s) != a
    r = ClusterSampler(range(N), replace=True, seed=0)
    idx = list(r)
    assert len(idx) == N and len(set(idx)) < N  # repeats (p ~ 1 - 1e-12)
    assert min(idx) >= 0 and max(idx) < N


def test_uniform_over_clusters():
    # cluster 0: 26 members, 1: 3 members, 2: 1 member; 3 empty
    labels = torch.tensor([0] * 26 + [1] * 3 + [2])
    s = ClusterSampler(range(N), seed=1)
    s.set_uniform_indices(labels, 4)
    idx = torch.tensor(list(s))
    assert idx.numel() == N
    counts = torch.bincount(labels[idx], minlength=4)
    # 3 non-empty clusters: 30 // 3 + 1 = 11 draws each, 33 cut to 30
    assert counts.sum() == N and counts[3] == 0
    assert all(8 <= c <= 11 for c in counts[:3].tolist())
    # the big cluster (26 > 11) is drawn without replacement
    big = idx[labels[idx] == 0]
    assert big.unique().numel() == big.numel()
    with pytest.raises(ValueError, match='labels for a data set'):
        s.set_uniform_indices(labels[:5], 4)


def _ranks(rank, world, labels):
    s = ClusterSampler(range(N), seed=3)
    if labels is not None:
        s.set_uniform_indices(labels, 3)
    return list(s)


@pytest.mark.parametrize('uniform', [False, True])
def test_ranks_partition_the_global_order(uniform):
    labels = torch.arange(N) % 3 if uniform else None
    r0, r1 = run_in_processes(_ranks, 2, args=(labels, ))
    single = _ranks(0, 1, labels)
    merged = [None] * (len(r0) + len(r1))
    merged[0::2], merged[1::2] = r0, r1
    assert merged[:N] == single
