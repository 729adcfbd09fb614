"""Replicated memories under 2 gloo processes: identical on both ranks after
several updates, and equal to one process fed the concatenated batch."""
import torch

from mmssl_ext.models.memories import (ClusterMemory, FeatureMemory,
                                       FeatureQueue)
from mmssl_testing import run_in_processes

N, D, K = 40, 6, 4


def _batches():
    g = torch.Generator().manual_seed(3)
    out = []
    for _ in range(6):
        idx = torch.randint(0, N, (8, ), generator=g)  # may repeat
        out.append((idx, torch.randn(8, D, generator=g)))
    return out


def _run(rank, world):
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(N, D, generator=g)
    labels = torch.tensor([0] * 28 + [1] * 6 + [2] * 4 + [3] * 2)
    cm = ClusterMemory(N, D, K, momentum=0.5, min_cluster=7, seed=1)
    cm.init_memory(feats, labels)
    fm = FeatureMemory(N, D, momentum=0.3)
    q = FeatureQueue(7, D)
    ratios, smalls = [], []
    for it, (idx, f) in enumerate(_batches()):
        # rank r gets its slice of the global batch (unequal: 3 / 5 rows)
        cut = 3
        sl = slice(0, cut) if rank == 0 else slice(cut, None)
        if world == 1:
            sl = slice(None)
        ratios.append(cm.update(idx[sl], f[sl])['change_ratio'])
        fm.update(idx[sl], f[sl])
        q.enqueue(f[sl])
        smalls.append(cm.deal_with_small_clusters())
        if it % 2 == 1:
            cm.update_centroids()
    states = {}
    for name, mod in (('cm', cm), ('fm', fm), ('q', q)):
        for k, v in mod.state_dict().items():
            states[f'{name}.{k}'] = v.clone()
    return states, torch.stack(ratios), smalls


def test_replicas_identical_and_equal_to_single_process():
    (s0, r0, n0), (s1, r1, n1) = run_in_processes(_run, 2)
    single, rs, ns = _run(0, 1)
    assert n0 == n1 == ns and sum(ns) > 0  # small-cluster path exercised
    assert torch.equal(r0, r1) and torch.equal(r0, rs)
    assert set(s0) == set(single)
    for k in single:
        assert torch.equal(s0[k], s1[k]), f'{k} differs between ranks'
        # same global batch in the same order -> same arithmetic
        assert torch.equal(s0[k], single[k]), f'{k} differs from 1 process'
    assert int(single['cm.num_splits']) > 0
