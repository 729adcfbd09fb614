import pytest
import torch

from mmssl_ext.models.memories import FeatureQueue


def _col(*v):
    """One unit key per id (e_id in 8 dims; enqueue's normalisation keeps
    it exactly), id 0 a zero row (an untouched slot of a zeroed queue)."""
    return torch.eye(8)[list(v)] * (torch.tensor(v) > 0).float().view(-1, 1)


def test_fifo_wrap_around_by_hand():
    q = FeatureQueue(5, 8)
    q.queue.zero_()
    q.enqueue(_col(1, 2, 3))
    assert torch.equal(q.queue, _col(1, 2, 3, 0, 0)) and int(q.ptr) == 3
    # batch 3 does not divide length 5: wraps, no assertion error
    q.enqueue(_col(4, 5, 6))
    assert torch.equal(q.queue, _col(6, 2, 3, 4, 5)) and int(q.ptr) == 1
    q.enqueue(_col(7))  # an odd last batch
    assert torch.equal(q.queue, _col(6, 7, 3, 4, 5)) and int(q.ptr) == 2


def test_batch_longer_than_queue_keeps_last_keys():
    q = FeatureQueue(3, 8)
    q.queue.zero_()
    q.enqueue(_col(1))  # ptr 1
    q.enqueue(_col(2, 3, 4, 5, 6))  # keeps 4, 5, 6 in FIFO order
    # sequence of writes: slot1=2, slot2=3, slot0=4, slot1=5, slot2=6
    assert torch.equal(q.queue, _col(4, 5, 6)) and int(q.ptr) == 0


def test_normalised_keys_and_detached_forward():
    q = FeatureQueue(4, 2)
    torch.testing.assert_close(q.queue.norm(dim=1), torch.ones(4))
    k = torch.tensor([[3., 4.]], requires_grad=True)
    q.enqueue(k)
    torch.testing.assert_close(q.queue[0], torch.tensor([0.6, 0.8]))
    out = q()
    assert not out.requires_grad and out.data_ptr() != q.queue.data_ptr()
    with pytest.raises(ValueError, match=r'\(B, 2\)'):
        q.enqueue(torch.ones(2, 3))


def test_state_dict_round_trip(tmp_path):
    q = FeatureQueue(5, 2, seed=1)
    q.enqueue(torch.randn(3, 2))
    torch.save(q.state_dict(), tmp_path / 'q.pth')
    r = FeatureQueue(5, 2, seed=7)
    r.load_state_dict(torch.load(tmp_path / 'q.pth', weights_only=True))
    assert torch.equal(q.queue, r.queue) and int(r.ptr) == 3
    k = torch.randn(4, 2)
    q.enqueue(k)
    r.enqueue(k)
    assert torch.equal(q.queue, r.queue) and int(q.ptr) == int(r.ptr) == 2
