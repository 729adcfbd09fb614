"""Positive / negative sampling of InterCLR against hand-built pools."""
import pytest
import torch
import torch.nn.functional as F

from mmssl_ext.models.interclr.neg_sampling import (
    HardNegativeSampler, RandomNegativeSampler, SemiEasyNegativeSampler,
    SemiHardNegativeSampler, build_neg_sampler, sample_positives)


def _setup(n=40, d=4, k=5, b=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    bank = F.normalize(torch.randn(n, d, generator=g), dim=1)
    label_bank = torch.arange(n) % k
    idx = torch.tensor([0, 7, 13])[:b]
    q = F.normalize(bank[idx] + 0.1 * torch.randn(b, d, generator=g), dim=1)
    return q, bank, label_bank, label_bank[idx]


def _pool_by_hand(q, bank, p, largest=True):
    pools = []
    for i in range(q.size(0)):
        sims = [(float(q[i] @ bank[j]), j) for j in range(bank.size(0))]
        sims.sort(reverse=largest)
        pools.append({j for _, j in sims[:p]})
    return pools


def test_semihard_draws_from_pool_and_never_same_label():
    q, bank, lb, y = _setup()
    sampler = SemiHardNegativeSampler(num_neg=6, pool_size=12,
                                      knn_backend='torch')
    pools = _pool_by_hand(q, bank, 12)
    seen = [set() for _ in range(3)]
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        neg = sampler(q, bank, lb, y, generator=g)
        assert neg.shape == (3, 6)
        for i in range(3):
            for j in neg[i].tolist():
                assert j in pools[i]
                assert lb[j] != y[i]
                seen[i].add(j)
    # every eligible pool entry is reachable (uniform draws)
    for i in range(3):
        eligible = {j for j in pools[i] if lb[j] != y[i]}
        assert seen[i] == eligible


def test_semieasy_pool_is_least_similar():
    q, bank, lb, y = _setup()
    sampler = SemiEasyNegativeSampler(num_neg=5, pool_size=10,
                                      knn_backend='torch')
    pools = _pool_by_hand(q, bank, 10, largest=False)
    neg = sampler(q, bank, lb, y, generator=torch.Generator().manual_seed(1))
    for i in range(3):
        assert set(neg[i].tolist()) <= pools[i]
        assert (lb[neg[i]] != y[i]).all()


def test_hard_is_most_similar_different_label_by_hand():
    q, bank, lb, y = _setup()
    sampler = HardNegativeSampler(num_neg=7, knn_backend='torch')
    neg = sampler(q, bank, lb, y)
    for i in range(3):
        order = sorted(range(bank.size(0)),
                       key=lambda j: -float(q[i] @ bank[j]))
        expect = [j for j in order if lb[j] != y[i]][:7]
        assert neg[i].tolist() == expect


def test_random_never_same_label_and_covers_bank():
    q, bank, lb, y = _setup()
    sampler = RandomNegativeSampler(num_neg=8)
    g = torch.Generator().manual_seed(0)
    seen = set()
    for _ in range(100):
        neg = sampler(q, bank, lb, y, generator=g)
        assert (lb[neg] != y.view(-1, 1)).all()
        seen.update(neg[0].tolist())
    assert seen == {j for j in range(40) if lb[j] != y[0]}


def test_positive_uniform_over_own_cluster_including_self():
    lb = torch.tensor([0, 1, 1, 2, 1, 0, 2, 2])
    labels = torch.tensor([1, 0, 2])
    g = torch.Generator().manual_seed(0)
    counts = torch.zeros(3, 8)
    for _ in range(600):
        p = sample_positives(lb, labels, g, num_clusters=3)
        assert (lb[p] == labels).all()
        counts[torch.arange(3), p] += 1
    # members of class 1: {1, 2, 4}; each drawn ~1/3 of the time
    assert counts[0, [1, 2, 4]].min() > 150
    assert counts[1, [0, 5]].min() > 250
    assert counts[2, [3, 6, 7]].min() > 150


def test_sampling_reproducible_with_generator():
    q, bank, lb, y = _setup()
    s = SemiHardNegativeSampler(num_neg=6, pool_size=12, knn_backend='torch')
    a = s(q, bank, lb, y, generator=torch.Generator().manual_seed(3))
    b = s(q, bank, lb, y, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_pool_of_only_same_label_is_widened_to_nearest_other_clusters():
    q, bank, lb, y = _setup()
    # only the least similar entries have another label: the top-3 pool
    # holds nothing but same-label entries (the reference loops forever)
    sims = q[0] @ bank.t()
    far = sims.argsort()[:4]  # ascending: far[3] is the most similar of them
    lb = torch.zeros_like(lb)
    lb[far] = 1
    s = SemiHardNegativeSampler(num_neg=2, pool_size=3, knn_backend='torch')
    with pytest.warns(UserWarning, match='semihard_neg_pool_num'):
        neg = s(q[:1], bank, lb, torch.tensor([0]),
                generator=torch.Generator().manual_seed(0))
    # widened pool = the 3 most similar entries of other clusters
    assert set(neg[0].tolist()) <= set(far[1:].tolist())
    assert len(set(neg[0].tolist())) == 2 and s.last_widened == 1


def test_pool_with_too_few_other_labels_is_widened_not_an_error():
    """One other-cluster entry in a 6-entry pool, 4 negatives wanted: the
    old redraw loop gave up ('could not draw'); the row is widened."""
    q, bank, lb, y = _setup()
    sims = q[0] @ bank.t()
    order = sims.argsort(descending=True)
    lb = torch.zeros_like(lb)
    lb[order[2]] = 1           # inside the top-6 pool
    lb[order[10:]] = 1         # far away
    s = SemiHardNegativeSampler(num_neg=4, pool_size=6, knn_backend='torch',
                                max_tries=3)
    with pytest.warns(UserWarning):
        neg = s(q[:1], bank, lb, torch.tensor([0]),
                generator=torch.Generator().manual_seed(0))
    expected_pool = {int(order[2])} | {int(i) for i in order[10:15]}
    assert set(neg[0].tolist()) <= expected_pool
    assert (lb[neg[0]] == 1).all() and len(set(neg[0].tolist())) == 4
    assert s.last_widened == 1
    # a row whose pool has enough other-cluster entries is not widened
    lb2 = torch.ones_like(lb)
    lb2[order[0]] = 0
    s(q[:1], bank, lb2, torch.tensor([0]),
      generator=torch.Generator().manual_seed(0))
    assert s.last_widened == 0


@pytest.mark.parametrize('kwargs,key', [
    (dict(neg_sampling='medium'), 'neg_sampling'),
    (dict(neg_sampling='semihard', semihard_neg_pool_num=4), 'semihard_neg_'
     'pool_num'),
    (dict(neg_sampling='semieasy', semieasy_neg_pool_num=4), 'semieasy_neg_'
     'pool_num'),
    (dict(neg_sampling='random', neg_num=0), 'neg_num'),
])
def test_build_errors_name_the_key(kwargs, key):
    args = dict(neg_sampling='semihard', neg_num=8, semihard_neg_pool_num=16,
                semieasy_neg_pool_num=16)
    args.update(kwargs)
    with pytest.raises(ValueError, match=key):
        build_neg_sampler(**args)


def test_build_aliases_and_dict():
    s = build_neg_sampler('semieasy', 4, 16, 12)
    assert isinstance(s, SemiEasyNegativeSampler) and s.pool_size == 12
    s = build_neg_sampler(dict(type='HardNegativeSampler'), 4, 16, 16)
    assert isinstance(s, HardNegativeSampler) and s.num_neg == 4
    # what the dict leaves out comes from the other arguments
    s = build_neg_sampler(dict(type='SemiHardNegativeSampler'), 4, 16, 12,
                          knn_backend='faiss')
    assert (s.num_neg, s.pool_size, s.knn_backend) == (4, 16, 'faiss')
    s = build_neg_sampler(dict(type='SemiEasyNegativeSampler', num_neg=3,
                               knn_backend='auto'), 4, 16, 12)
    assert (s.num_neg, s.pool_size, s.knn_backend) == (3, 12, 'auto')
    with pytest.raises(ValueError, match='semihard_neg_pool_num'):
        build_neg_sampler('semihard', 4, 64, 64).check_bank_length(32)
