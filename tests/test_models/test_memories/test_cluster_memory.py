import pytest
import torch

from mmssl_ext.models.memories import ClusterMemory

T = torch.tensor


def _four():
    m = ClusterMemory(4, 2, 2, momentum=1.0, min_cluster=0)
    m.init_memory(T([[1., 0.], [1., 0.], [0., 1.], [0., 1.]]),
                  T([0, 0, 1, 1]))
    return m


def test_init_memory_centroids_are_means():
    m = ClusterMemory(4, 2, 3, min_cluster=0)
    before = m.centroids[2].clone()
    with pytest.warns(UserWarning, match='1 empty'):
        m.init_memory(T([[2., 0.], [0., 3.], [0., 1.], [1., 1.]]),
                      T([0, 0, 1, 1]))
    s = 2**-0.5
    torch.testing.assert_close(m.centroids[0], T([0.5, 0.5]))
    torch.testing.assert_close(m.centroids[1], T([s / 2, (1 + s) / 2]))
    assert torch.equal(m.centroids[2], before)  # empty keeps previous
    assert torch.equal(m.histogram(), T([2, 2, 0]))


def test_relabel_uses_unnormalised_centroids_and_change_ratio():
    m = _four()
    m.centroids.copy_(T([[2., 0.], [0., .5]]))
    # [0.6, 0.8]: scores 1.2 (c0) vs 0.4 (c1) -> label 0 (was 1)
    r = m.update(T([2]), T([[3., 4.]]))["change_ratio"]
    assert float(r) == 1.0
    assert torch.equal(m.label_bank, T([0, 0, 0, 1]))
    torch.testing.assert_close(m.bank[2], T([.6, .8]))
    # row 1 -> [1, .1]/|.| : label 0 unchanged; row 3 -> [0, 1]: label 1
    r = m.update(T([1, 3]), T([[1., .1], [0., 2.]]))["change_ratio"]
    assert float(r) == 0.0
    assert torch.equal(m.label_bank, T([0, 0, 0, 1]))
    # one of two changes -> 0.5
    r = m.update(T([0, 3]), T([[1., 0.], [1., 0.]]))["change_ratio"]
    assert float(r) == 0.5 and int(m.label_bank[3]) == 0


def test_update_centroids_all_and_subset():
    m = _four()
    m.centroids.copy_(T([[2., 0.], [0., .5]]))
    m.update(T([2]), T([[3., 4.]]))  # labels [0, 0, 0, 1]
    m.update_centroids(cinds=[1])
    torch.testing.assert_close(m.centroids, T([[2., 0.], [0., 1.]]))
    m.update_centroids()
    torch.testing.assert_close(m.centroids[0], T([2.6 / 3, .8 / 3]))


def test_assign_argmax():
    m = _four()
    assert torch.equal(m.assign(T([[5., 1.], [-1., 0.1], [0., 0.]])),
                       T([0, 1, 0]))


def _small_case():
    feats = T([[1., 0.], [1., 0.], [1., 0.], [0., 1.], [0., 1.],
               [0., -1.], [0., -1.], [-1., 0.]])
    m = ClusterMemory(8, 2, 3, momentum=1.0, min_cluster=2)
    m.init_memory(feats, T([0, 0, 0, 0, 0, 1, 1, 2]))
    return m


def test_small_cluster_dissolve_and_split_by_hand():
    m = _small_case()
    torch.testing.assert_close(m.centroids[0], T([.6, .4]))
    assert m.deal_with_small_clusters() == 1
    # sample 7 ([-1, 0]) scores -0.6 with c0 and 0 with c1 -> cluster 1;
    # cluster 0 (largest, 5 members) splits {0,1,2} | {3,4}; {3,4} -> 2
    assert torch.equal(m.label_bank, T([0, 0, 0, 2, 2, 1, 1, 1]))
    torch.testing.assert_close(
        m.centroids, T([[1., 0.], [-1 / 3, -2 / 3], [0., 1.]]))
    assert int(m.num_splits) == 1
    assert m.deal_with_small_clusters() == 0  # nothing small any more


def test_split_falls_back_to_random_half():
    m = ClusterMemory(7, 2, 2, momentum=1.0, min_cluster=2, seed=5)
    feats = torch.ones(7, 2)
    feats[6] = T([-1., 0.])
    m.init_memory(feats, T([0, 0, 0, 0, 0, 0, 1]))
    m.deal_with_small_clusters()
    # 7 joins cluster 0 (7 members, 6 identical + 1); 2-means separates
    # the odd one out
    assert torch.equal(m.histogram(), T([6, 1]))
    assert int(m.label_bank[6]) == 1
    # now identical features only: 2-means fails -> floor(6/2) move
    m2 = ClusterMemory(7, 2, 2, momentum=1.0, min_cluster=2, seed=5)
    m2.init_memory(torch.ones(7, 2), T([0, 0, 0, 0, 0, 0, 1]))
    m2.deal_with_small_clusters()
    assert torch.equal(m2.histogram(), T([4, 3]))
    # reproducible given the seed
    m3 = ClusterMemory(7, 2, 2, momentum=1.0, min_cluster=2, seed=5)
    m3.init_memory(torch.ones(7, 2), T([0, 0, 0, 0, 0, 0, 1]))
    m3.deal_with_small_clusters()
    assert torch.equal(m2.label_bank, m3.label_bank)


def test_invalid_args():
    with pytest.raises(ValueError, match='num_clusters=5'):
        ClusterMemory(4, 2, 5)
    with pytest.raises(ValueError, match='min_cluster'):
        ClusterMemory(4, 2, 2, min_cluster=-1)
    m = ClusterMemory(4, 2, 2)
    with pytest.raises(ValueError, match='labels'):
        m.init_memory(torch.randn(4, 2), T([0, 1, 2, 0]))


def test_state_dict_round_trip(tmp_path):
    m = _small_case()
    m.update(T([0, 3]), T([[1., 1.], [0., 1.]]))
    m.deal_with_small_clusters()
    torch.save(m.state_dict(), tmp_path / 'cm.pth')
    n = ClusterMemory(8, 2, 3, momentum=1.0, min_cluster=2, seed=1)
    n.load_state_dict(torch.load(tmp_path / 'cm.pth', weights_only=True))
    assert set(m.state_dict()) == {'bank', 'initialized', 'label_bank',
                                   'centroids', 'num_splits'}
    for k, v in m.state_dict().items():
        assert torch.equal(v, n.state_dict()[k]), k
    f = torch.randn(3, 2)
    assert torch.equal(m.update(T([1, 5, 7]), f)['change_ratio'],
                       n.update(T([1, 5, 7]), f)['change_ratio'])
    m.update_centroids()
    n.update_centroids()
    assert torch.equal(m.centroids, n.centroids)
    assert torch.equal(m.label_bank, n.label_bank)
