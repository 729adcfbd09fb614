"""ContrastiveCropDataset / SharedBoxStore: injection by sample_idx, in-place
updates seen by (persistent) DataLoader workers, state round trip, errors."""
import os

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from mmssl_ext.ccrop import ContrastiveCropDataset, SharedBoxStore
from mmssl_ext.ccrop.box_store import find_box_dataset
from mmssl_ext.registry import DATASETS


def _echo(results):
    """Pipeline step (module level: picklable) returning what the worker
    saw: its pid, the sample index and the injected box (or -1s)."""
    box = results.get('ccrop_box', None)
    return dict(
        pid=os.getpid(),
        idx=results['sample_idx'],
        box=torch.as_tensor(box if box is not None else [-1.] * 4,
                            dtype=torch.float32))


def _wrapped(n=12, pipeline=(_echo, ), **kw):
    return DATASETS.build(
        dict(type='ContrastiveCropDataset',
             dataset=dict(type='SyntheticImageDataset', num_samples=n,
                          img_size=8, pipeline=list(pipeline)),
             **kw))


def test_store_init_and_injection():
    ds = _wrapped()
    assert len(ds) == 12 and ds.store.boxes.is_shared()
    np.testing.assert_array_equal(ds.store.boxes.numpy(),
                                  np.tile([0, 0, 1, 1], (12, 1)))
    assert not ds.store.active
    assert ds[3]['box'].tolist() == [-1] * 4  # inactive: no key at all
    new = torch.rand(12, 2) * 0.5
    boxes = torch.cat([new, new + 0.5], 1)
    ds.store.update(boxes)
    ds.store.set_active(True)
    for i in (0, 5, 11):
        out = ds[i]
        assert out['idx'] == i
        torch.testing.assert_close(out['box'], boxes[i], rtol=0, atol=0)


def test_box_reaches_both_views_of_multiview():
    view = [dict(type='ContrastiveCrop', scale=4, alpha=0.1)]
    ds = _wrapped(pipeline=[
        dict(type='MultiView', num_views=2, transforms=[view]),
        dict(type='PackInputs', meta_keys=('sample_idx', 'ccrop_box'))
    ], active=True, init_box=(0.25, 0.25, 0.75, 0.75))
    out = ds[2]
    assert len(out['inputs']) == 2 and out['inputs'][0].shape == (3, 4, 4)
    np.testing.assert_array_equal(out['data_samples'].ccrop_box,
                                  [0.25, 0.25, 0.75, 0.75])


def test_persistent_workers_see_in_place_updates():
    ds = _wrapped(n=16)
    loader = DataLoader(ds, batch_size=4, num_workers=2,
                        persistent_workers=True, shuffle=False)

    def epoch():
        pids, idx, box = set(), [], []
        for b in loader:
            pids.update(b['pid'].tolist())
            idx.append(b['idx'])
            box.append(b['box'])
        return pids, torch.cat(idx), torch.cat(box)

    pids0, idx, box = epoch()
    assert (box == -1).all() and idx.tolist() == list(range(16))
    assert os.getpid() not in pids0 and len(pids0) == 2
    # in-place update in the parent after the workers forked
    b1 = torch.stack([torch.tensor([i, i, i + 1, i + 1]) / 20.
                      for i in range(16)])
    ds.store.update(b1)
    ds.store.set_active(True)
    pids1, idx, box = epoch()
    assert pids1 == pids0  # the same (persistent) worker processes
    torch.testing.assert_close(box, b1[idx], rtol=0, atol=0)
    # and again: a second refresh is seen as well
    b2 = b1.flip(0)
    ds.store.update(b2)
    pids2, idx, box = epoch()
    assert pids2 == pids0
    torch.testing.assert_close(box, b2[idx], rtol=0, atol=0)
    ds.store.set_active(False)
    _, _, box = epoch()
    assert (box == -1).all()


def test_state_dict_round_trip_in_place():
    s = SharedBoxStore(5)
    storage = s.boxes.data_ptr()
    b = torch.tensor([[0.1, 0.2, 0.3, 0.4]]).repeat(5, 1)
    s.update(b)
    s.set_active(True)
    state = s.state_dict()
    t = SharedBoxStore(5)
    ptr = t.boxes.data_ptr()
    t.load_state_dict(state)
    assert t.boxes.data_ptr() == ptr and s.boxes.data_ptr() == storage
    assert torch.equal(t.boxes, b) and t.active
    state['boxes'][0, 0] = 0.0  # a copy, not a view of the store
    assert s.boxes[0, 0] == pytest.approx(0.1)


def test_store_errors():
    s = SharedBoxStore(3)
    with pytest.raises(ValueError, match='shape'):
        s.update(torch.zeros(4, 4))
    with pytest.raises(ValueError, match='normalised'):
        s.update(torch.tensor([[0.5, 0, 0.4, 1.]] * 3))
    with pytest.raises(ValueError, match='init_box'):
        SharedBoxStore(3, init_box=(0, 0, 2, 1))
    with pytest.raises(ValueError, match='length'):
        SharedBoxStore(0)
    with pytest.raises(TypeError, match='ContrastiveCropDataset'):
        find_box_dataset(DATASETS.build(
            dict(type='SyntheticImageDataset', num_samples=4)))
    with pytest.raises(TypeError, match='BaseDataset'):
        ContrastiveCropDataset(dataset=[1, 2, 3])
    with pytest.raises(ValueError, match='lazy_init=True'):
        _wrapped(lazy_init=True)
