"""mmengine checkpoints of real runs load under the pinned PyTorch with its
safe default (``weights_only=True``): resume and ``load_from`` with a real
Runner, plus the types methods may add (numpy/torch/python RNG states)."""
import io
import os.path as osp
import random

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner import Runner
from reliability_toys import runner_cfg

from mmssl_ext.utils.checkpoint_compat import (CheckpointLoadError,
                                               allow_mmengine_checkpoints,
                                               checked_checkpoint_loading)


def _roundtrip(obj):
    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


def test_torch_default_is_weights_only():
    # the premise of the module: the pinned torch loads safely by default
    import inspect

    from mmengine.utils import digit_version
    assert digit_version(torch.__version__) >= digit_version('2.6')
    sig = inspect.signature(torch.load)
    assert sig.parameters['weights_only'].default in (None, True)


def test_allow_list_covers_numpy_history_and_rng_states():
    allow_mmengine_checkpoints()  # idempotent
    hb = HistoryBuffer()
    hb.update(1.5)
    hb.update(2.0, count=3)
    rs = np.random.RandomState(3).get_state()
    obj = dict(
        hb=hb,
        scalars=[np.float64(1.5), np.float32(2.5), np.float16(1),
                 np.int64(3), np.int32(4), np.uint8(5), np.uint32(6),
                 np.uint64(7), np.bool_(True), np.complex64(1j)],
        arrays=[np.arange(3), np.zeros((2, 2), np.float32),
                np.array(['a', 'bc'])],
        numpy_rs=rs,
        numpy_gen=np.random.default_rng(0).bit_generator.state,
        py_random=random.getstate(),
        torch_rng=torch.get_rng_state(),
        generator=torch.Generator().manual_seed(1).get_state(),
        misc=dict(s={1, 2}, size=torch.Size([2]), dev=torch.device('cpu')))
    out = _roundtrip(obj)
    assert out['hb'].data[0].tolist() == hb.data[0].tolist()
    assert out['hb'].data[1].tolist() == [1, 3]
    for a, b in zip(out['scalars'], obj['scalars']):
        assert type(a) is type(b) and a == b
    for a, b in zip(out['arrays'], obj['arrays']):
        assert a.dtype == b.dtype and (a == b).all()
    assert out['numpy_rs'][0] == 'MT19937'
    assert (out['numpy_rs'][1] == rs[1]).all()
    assert out['numpy_gen'] == obj['numpy_gen']
    assert out['py_random'] == obj['py_random']
    assert torch.equal(out['generator'], obj['generator'])


class _Untrusted:
    pass


def test_unknown_type_still_refused(tmp_path):
    """Safety is not turned off: an arbitrary class is refused, with an
    error naming the file and the global."""
    from mmengine.runner.checkpoint import _load_checkpoint
    path = str(tmp_path / 'untrusted.pth')
    torch.save(dict(x=_Untrusted()), path)
    with pytest.raises(CheckpointLoadError) as e, \
            checked_checkpoint_loading():
        _load_checkpoint(path, map_location='cpu')
    assert path in str(e.value) and '_Untrusted' in str(e.value)


def _state(runner):
    return {k: v.clone() for k, v in runner.model.state_dict().items()}


def test_runner_checkpoint_resume_and_load_from(tmp_path):
    # uninterrupted: 6 iterations, checkpoints at 2, 4, 6 with val metrics
    full = Runner(**runner_cfg(tmp_path / 'full', max_iters=6))
    full.train()
    ref = _state(full)
    ckpt2 = osp.join(tmp_path, 'full', 'iter_2.pth')
    # a real checkpoint loads with torch's default (weights_only=True) and
    # holds what resume needs
    ckpt = torch.load(osp.join(tmp_path, 'full', 'iter_6.pth'))
    assert set(ckpt) >= {'meta', 'state_dict', 'optimizer', 'message_hub',
                         'param_schedulers'}
    assert ckpt['meta']['seed'] == 7 and ckpt['meta']['iter'] == 6
    assert isinstance(ckpt['message_hub']['log_scalars']['val/score'],
                      HistoryBuffer)
    assert len(ckpt['param_schedulers']) == 2

    # resume from iteration 2 in a fresh Runner: same weights at the end
    # (the toy's data order is seeded and checkpointed through the seed).
    resumed = Runner(**runner_cfg(tmp_path / 'resumed', max_iters=6,
                                  resume=True, load_from=ckpt2))
    resumed.train()
    assert resumed.iter == 6
    for k, v in ref.items():
        torch.testing.assert_close(_state(resumed)[k], v, rtol=0, atol=0,
                                   msg=k)
    # the LR schedule and optimizer momentum were restored too
    lr_full = full.optim_wrapper.get_lr()['lr']
    assert resumed.optim_wrapper.get_lr()['lr'] == lr_full

    # load_from (weights only, no resume) under weights_only=True
    loaded = Runner(**runner_cfg(tmp_path / 'loaded', max_iters=6,
                                 load_from=osp.join(tmp_path, 'full',
                                                    'iter_6.pth')))
    loaded.load_or_resume()
    for k, v in ref.items():
        assert torch.equal(_state(loaded)[k], v), k
    assert loaded.iter == 0  # not resumed: counters start over
