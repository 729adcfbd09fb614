"""The memory contract: finding the memories of a model, the length check,
gathered updates (last occurrence wins), pseudo-label memories
(LabelMemory, ClusterMemory.set_clusters, offline labels), the seeded
generator and InvP's uniform bank initialisation."""
import math

import pytest
import torch
import torch.nn as nn

from mmssl_ext.models.memories import (ClusterMemory, ClusterState,
                                       FeatureMemory, LabelMemory,
                                       NeighbourMemory, check_memories,
                                       find_memories)
from mmssl_ext.utils.seeding import seeded_generator

T = torch.tensor


class Host(nn.Module):

    def __init__(self):
        super().__init__()
        self.memory = ClusterMemory(6, 2, 2, init='data')
        self.branch = nn.Module()
        self.branch.bank = FeatureMemory(6, 3)
        self.linear = nn.Linear(2, 2)


def test_find_and_check_memories():
    host = Host()
    assert [n for n, _ in find_memories(host)] == ['memory', 'branch.bank']
    assert [n for n, _ in find_memories(host, ClusterState)] == ['memory']
    check_memories(host, 6)
    with pytest.raises(ValueError, match=r'model.memory.length=6 .* 7'):
        check_memories(host, 7)
    host.memory = ClusterMemory(7, 2, 2)
    with pytest.raises(ValueError, match='model.branch.bank.length=6'):
        check_memories(host, 7)


def test_gather_keeps_last_occurrence_and_extra_rows():
    m = NeighbourMemory(4, 2, num_neighbours=1)
    idx, f, rows = m.gather(T([2, 0, 2]), T([[1., 0.], [0., 1.], [3., 3.]]),
                            T([[7], [8], [9]]))
    # static shapes: every position keeps its index, a duplicate carries
    # the rows of the index's last occurrence
    assert idx.tolist() == [2, 0, 2]
    assert f.tolist() == [[3., 3.], [0., 1.], [3., 3.]]
    assert rows.tolist() == [[9], [8], [9]]


def test_label_memory():
    m = LabelMemory(5, 3)
    assert not m.initialized and m.labels.tolist() == [-1] * 5
    m.set_clusters(None, T([0, 2, 2, 1, 0]))
    assert m.initialized and m.histogram().tolist() == [2, 1, 2]
    with pytest.raises(ValueError, match='expected 5 labels'):
        m.set_clusters(None, T([0, 1]))
    with pytest.raises(ValueError, match=r'\[0, 3\)'):
        m.set_clusters(None, T([0, 1, 2, 3, 0]))
    with pytest.raises(ValueError, match='num_clusters'):
        LabelMemory(2, 3)
    assert set(m.state_dict()) == {'labels'}


def test_cluster_memory_set_clusters_first_fills_later_relabels():
    m = ClusterMemory(4, 2, 2, momentum=1.0, init='data')
    feats = T([[1., 0.], [1., 0.], [0., 2.], [0., 1.]])
    m.set_clusters(feats, T([0, 0, 1, 1]))
    torch.testing.assert_close(m.bank, T([[1., 0.], [1., 0.], [0., 1.],
                                          [0., 1.]]))
    torch.testing.assert_close(m.centroids, T([[1., 0.], [0., 1.]]))
    # later: the labels change, the bank is kept, centroids are the means
    m.set_clusters(torch.zeros(4, 2), T([0, 1, 1, 1]))
    assert m.labels.tolist() == [0, 1, 1, 1]
    torch.testing.assert_close(m.bank[0], T([1., 0.]))
    torch.testing.assert_close(m.centroids,
                               T([[1., 0.], [1. / 3, 2. / 3]]))


def test_offline_labels_update_the_bank_only():
    m = ClusterMemory(3, 2, 2, momentum=1.0, online_labels=False)
    m.set_clusters(T([[1., 0.], [0., 1.], [0., 1.]]), T([0, 1, 1]))
    assert m.update(T([2]), T([[3., 0.]])) == {}
    torch.testing.assert_close(m.bank[2], T([1., 0.]))
    assert m.labels.tolist() == [0, 1, 1]  # not relabelled
    on = ClusterMemory(3, 2, 2, momentum=1.0)
    on.set_clusters(T([[1., 0.], [0., 1.], [0., 1.]]), T([0, 1, 1]))
    assert float(on.update(T([2]), T([[3., 0.]]))['change_ratio']) == 1.
    assert on.labels.tolist() == [0, 1, 0]


def test_seeded_generator_parts():
    def draw(*parts):
        return torch.rand(3, generator=seeded_generator(*parts)).tolist()

    assert draw(5) == torch.rand(
        3, generator=torch.Generator().manual_seed(5)).tolist()
    assert draw(5, 2) == torch.rand(
        3, generator=torch.Generator().manual_seed(5 * 1000003 + 2)).tolist()
    assert draw(5, 2) != draw(5, 3) and draw(5, 2) != draw(2, 5)
    assert draw(2**40, 2**40, 2**40) == draw(2**40, 2**40, 2**40)  # no
    # overflow: the seed is reduced modulo 2**63
    assert seeded_generator(T(3), T(4)).initial_seed() == 3 * 1000003 + 4


def test_uniform_init_is_invp_authors():
    m = FeatureMemory(50, 8, init='uniform', seed=2)
    a = 1 / math.sqrt(8 / 3)
    expect = torch.rand(50, 8, generator=torch.Generator().manual_seed(
        2)) * 2 * a - a
    assert torch.equal(m.bank, expect)
    assert bool(m.initialized)


def test_build_memory_scope_defaults_and_kind():
    from mmengine.registry import DefaultScope

    from mmssl_ext.models.memories import build_memory
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        m = build_memory(dict(type='ClusterMemory', length=6,
                              num_clusters=2), ClusterMemory, feat_dim=3,
                         init='data')
    assert (m.feat_dim, m.init) == (3, 'data')
    assert build_memory(m, ClusterMemory) is m
    with pytest.raises(TypeError, match='must be a NeighbourMemory'):
        build_memory(dict(type='FeatureMemory', length=6, feat_dim=3),
                     NeighbourMemory)
