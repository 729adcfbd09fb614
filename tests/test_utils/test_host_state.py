"""Host mirrors of per-step scalar state (mmssl_ext/utils/host_state.py):
the buffer the checkpoint holds and the Python value the step reads stay
equal through updates and loads; the batch's index check runs on the host
and names the config key."""
import pytest
import torch
from mmpretrain.structures import DataSample

from mmssl_ext.models.memories import (ClusterMemory, FeatureMemory,
                                       FeatureQueue, LabelMemory)
from mmssl_ext.utils.dist import get_sample_idx
from mmssl_ext.utils.host_state import host_scalar, value_checks


def test_queue_pointer_mirror_survives_a_load():
    q = FeatureQueue(length=5, feat_dim=2)
    q.enqueue(torch.randn(3, 2))
    assert host_scalar(q, 'ptr') == 3 and int(q.ptr) == 3
    r = FeatureQueue(length=5, feat_dim=2, seed=7)
    assert host_scalar(r, 'ptr') == 0
    r.load_state_dict(q.state_dict())
    assert host_scalar(r, 'ptr') == 3  # re-read from the loaded buffer
    keys = torch.randn(4, 2)
    q.enqueue(keys)
    r.enqueue(keys)
    assert torch.equal(q.queue, r.queue) and int(r.ptr) == 2
    assert host_scalar(r, 'ptr') == 2


def test_initialized_flags_follow_writes_and_loads():
    m = FeatureMemory(4, 2, init='data')
    assert not m.is_initialized() and not bool(m.initialized)
    m.init_bank(torch.randn(4, 2))
    assert m.is_initialized() and bool(m.initialized)
    n = FeatureMemory(4, 2, init='data')
    n.load_state_dict(m.state_dict())
    assert n.is_initialized()
    lab = LabelMemory(3, 2)
    assert not lab.initialized
    lab.set_clusters(None, torch.tensor([0, 1, 1]))
    assert lab.initialized
    other = LabelMemory(3, 2)
    assert not other.initialized  # cached False ...
    other.load_state_dict(lab.state_dict())
    assert other.initialized  # ... dropped by the load
    c = ClusterMemory(4, 2, 2, init='data')
    c.set_clusters(torch.randn(4, 2), torch.tensor([0, 0, 1, 1]))
    assert c.is_initialized()


def test_sample_idx_checked_on_the_host():
    samples = [DataSample(metainfo=dict(sample_idx=i)) for i in (0, 7)]
    assert get_sample_idx(samples, length=8).tolist() == [0, 7]
    with pytest.raises(ValueError,
                       match=r'\[0, 7\] but model.memory.length=5'):
        get_sample_idx(samples, length=5)
    with pytest.raises(ValueError, match='branches.0.memory.length=3'):
        get_sample_idx(samples, length=3, key='branches.0.memory.length')


def test_value_checks_switch(monkeypatch):
    t = torch.zeros(1)
    assert value_checks(t)  # CPU: always
    from mmssl_ext.testing.fake_cuda import FakeCuda
    fc = FakeCuda()
    with fc:
        c = torch.zeros(1, device='cuda')
        assert not value_checks(c)  # CUDA: only in debug mode
        monkeypatch.setenv('MMSSL_EXT_DEBUG_CHECKS', '1')
        assert value_checks(c)
