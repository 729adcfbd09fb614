import math

import pytest
import torch

from mmssl_ext.models.memories import FeatureMemory


def _mem(momentum, rows):
    m = FeatureMemory(len(rows), 2, momentum=momentum)
    m.bank.copy_(torch.tensor(rows, dtype=torch.float))
    return m


def test_init_random_unit_rows_and_seeded():
    a = FeatureMemory(10, 4, seed=3)
    b = FeatureMemory(10, 4, seed=3)
    assert a.bank.shape == (10, 4)
    torch.testing.assert_close(a.bank.norm(dim=1), torch.ones(10))
    assert torch.equal(a.bank, b.bank)
    assert not torch.equal(a.bank, FeatureMemory(10, 4, seed=4).bank)
    assert bool(a.initialized)


def test_momentum_blend_by_hand():
    # momentum weights the NEW feature: 0.75 * old + 0.25 * new
    m = _mem(0.25, [[1., 0.], [0., 1.], [1., 0.]])
    m.update(torch.tensor([0]), torch.tensor([[0., 2.]]))  # new -> [0, 1]
    n = math.sqrt(0.75**2 + 0.25**2)
    torch.testing.assert_close(m.bank[0], torch.tensor([0.75 / n, 0.25 / n]))
    # untouched rows unchanged
    torch.testing.assert_close(m.bank[1:], torch.tensor([[0., 1.], [1., 0.]]))


def test_momentum_one_replaces():
    m = _mem(1.0, [[1., 0.], [0., 1.]])
    m.update(torch.tensor([1]), torch.tensor([[3., 4.]]))
    torch.testing.assert_close(m.bank[1], torch.tensor([0.6, 0.8]))


def test_momentum_half_npid():
    m = _mem(0.5, [[1., 0.], [0., 1.]])
    m.update(torch.tensor([0]), torch.tensor([[0., 1.]]))
    s = 1 / math.sqrt(2)
    torch.testing.assert_close(m.bank[0], torch.tensor([s, s]))


def test_duplicate_index_last_wins():
    m = _mem(1.0, [[1., 0.], [0., 1.]])
    m.update(torch.tensor([0, 1, 0]),
             torch.tensor([[0., 1.], [1., 0.], [-1., 0.]]))
    torch.testing.assert_close(m.bank, torch.tensor([[-1., 0.], [1., 0.]]))


def test_init_bank_and_data_init_guard():
    m = FeatureMemory(3, 2, init='data')
    assert not bool(m.initialized)
    with pytest.raises(RuntimeError, match='init_bank'):
        m.update(torch.tensor([0]), torch.ones(1, 2))
    m.init_bank(torch.tensor([[3., 4.], [0., 2.], [1., 0.]]))
    torch.testing.assert_close(
        m.bank, torch.tensor([[0.6, 0.8], [0., 1.], [1., 0.]]))
    assert bool(m.initialized)
    with pytest.raises(ValueError, match=r'\(3, 2\)'):
        m.init_bank(torch.ones(4, 2))
    with pytest.raises(ValueError, match='NaN'):
        m.init_bank(torch.full((3, 2), float('nan')))


def test_check_length_and_bad_index():
    m = FeatureMemory(5, 2)
    m.check_length(5)
    with pytest.raises(ValueError, match=r'memory.length=5 .* 7 samples'):
        m.check_length(7, key='memory.length')
    with pytest.raises(IndexError, match=r'\[0, 5\)'):
        m.update(torch.tensor([5]), torch.ones(1, 2))


@pytest.mark.parametrize('kwargs,match', [
    (dict(momentum=0.), 'momentum'),
    (dict(momentum=1.5), 'momentum'),
    (dict(init='zeros'), 'init'),
])
def test_invalid_args(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FeatureMemory(4, 2, **kwargs)


def test_state_dict_round_trip(tmp_path):
    m = FeatureMemory(6, 3, momentum=0.3, init='data')
    m.init_bank(torch.randn(6, 3))
    m.update(torch.tensor([1, 4]), torch.randn(2, 3))
    torch.save(m.state_dict(), tmp_path / 'm.pth')
    n = FeatureMemory(6, 3, momentum=0.3, init='data', seed=9)
    n.load_state_dict(torch.load(tmp_path / 'm.pth', weights_only=True))
    assert set(m.state_dict()) == {'bank', 'initialized'}
    for k, v in m.state_dict().items():
        assert torch.equal(v, n.state_dict()[k]), k
    # both continue identically
    f = torch.randn(2, 3)
    m.update(torch.tensor([0, 5]), f)
    n.update(torch.tensor([0, 5]), f)
    assert torch.equal(m.bank, n.bank)


def test_nonfinite_features_never_reach_the_bank_or_queue():
    import pytest
    import torch

    from mmssl_ext.models.memories import FeatureMemory, FeatureQueue
    # a non-finite row keeps its old value (decided on the device, no host
    # sync); the finite rows of the same batch are written.
    # NonFiniteLossHook stops the run (tests/test_reliability)
    mem = FeatureMemory(length=4, feat_dim=2, momentum=1.0)
    before = mem.bank.clone()
    bad = torch.tensor([[1.0, float('nan')], [0.0, 2.0]])
    mem.update(torch.tensor([1, 2]), bad)
    assert torch.equal(mem.bank[[0, 1, 3]], before[[0, 1, 3]])
    assert mem.bank[2].tolist() == [0.0, 1.0]
    q = FeatureQueue(length=3, feat_dim=2)
    qb = q.queue.clone()
    q.enqueue(torch.tensor([[float('inf'), 0.0]]))
    assert torch.equal(q.queue, qb) and int(q.ptr) == 1
