"""A non-finite loss stops training at that iteration, naming it and the
loss keys, before the NaN reaches a checkpoint (toy model with a memory
buffer, MMPretrain's MoCo, and 2 DDP processes)."""
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner
from reliability_toys import runner_cfg

from mmssl_ext.engine.hooks.nonfinite_loss_hook import (NonFiniteLossHook,
                                                        find_nonfinite)
from mmssl_testing import run_in_processes

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
CFG = osp.join(ROOT, 'tests', 'data', 'configs', 'mocov2_tiny_synthetic.py')


def test_find_nonfinite():
    out = dict(loss=torch.tensor(float('nan')), loss_a=torch.tensor(1.),
               loss_b=[torch.tensor(1.), torch.tensor([2., float('inf')])],
               loss_c=float('-inf'), change_ratio=torch.tensor(float('nan')),
               loss_d=torch.zeros(0))
    bad = dict(find_nonfinite(out))
    assert set(bad) == {'loss', 'loss_b', 'loss_c'}  # diagnostics ignored
    assert math.isnan(bad['loss']) and bad['loss_c'] == float('-inf')
    assert find_nonfinite(None) == []
    assert set(dict(find_nonfinite(out, pattern='ratio'))) == {'change_ratio'}


def test_hook_arguments_validated():
    with pytest.raises(ValueError, match='interval'):
        NonFiniteLossHook(interval=0)
    with pytest.raises(ValueError, match='pattern'):
        NonFiniteLossHook(pattern='(')


def _all_finite(ckpt):
    tensors = list(ckpt['state_dict'].values())
    for st in ckpt['optimizer']['state'].values():
        tensors += [v for v in st.values() if torch.is_tensor(v)]
    return all(torch.isfinite(t).all() for t in tensors
               if t.is_floating_point())


def test_nan_loss_stops_before_checkpoint(tmp_path):
    work = tmp_path / 'w'
    cfg = runner_cfg(work, max_iters=10, interval=2, nan_at=5)
    # enabled as an extra default hook, as configs/_base_/default_runtime.py
    # can do
    cfg['default_hooks']['nonfinite'] = dict(type='NonFiniteLossHook')
    runner = Runner(**cfg)
    with pytest.raises(FloatingPointError) as e:
        runner.train()
    msg = str(e.value)
    assert 'iteration 5 ' in msg and 'loss_bad=nan' in msg, msg
    assert 'loss_main' not in msg and 'diag' not in msg
    assert 'iter_4.pth' in msg  # names the checkpoint to resume from
    saved = sorted(p.name for p in work.glob('iter_*.pth'))
    assert saved == ['iter_2.pth', 'iter_4.pth']
    assert open(work / 'last_checkpoint').read().endswith('iter_4.pth')
    ckpt = torch.load(work / 'iter_4.pth')
    assert _all_finite(ckpt) and ckpt['meta']['iter'] == 4
    assert ckpt['state_dict']['bank'].abs().sum() > 0


def test_without_hook_nan_would_be_checkpointed(tmp_path):
    """The control: mmengine alone trains on and saves NaN weights."""
    work = tmp_path / 'w'
    Runner(**runner_cfg(work, max_iters=6, interval=2, nan_at=5)).train()
    assert not _all_finite(torch.load(work / 'iter_6.pth'))


class PoisonHook(Hook):
    """Sets one backbone weight to NaN before 1-based iteration ``at``."""

    def __init__(self, at):
        self.at = at

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter + 1 == self.at:
            from mmpretrain.utils import get_ori_model
            w = get_ori_model(runner.model).backbone.conv1.weight
            with torch.no_grad():
                w.view(-1)[0] = float('nan')


def test_mmpretrain_moco_nan_stops(tmp_path):
    cfg = Config.fromfile(CFG)
    cfg.work_dir = str(tmp_path / 'w')
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=8,
                         val_interval=100)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=2,
                                        by_epoch=False)
    cfg.default_hooks.nonfinite = dict(type='NonFiniteLossHook')
    cfg.log_level = 'WARNING'
    runner = Runner.from_cfg(cfg)
    runner.register_hook(PoisonHook(at=3))
    with pytest.raises(FloatingPointError, match=r'iteration 3 .*loss=nan'):
        runner.train()
    ckpt = torch.load(osp.join(cfg.work_dir, 'iter_2.pth'))
    assert not osp.exists(osp.join(cfg.work_dir, 'iter_4.pth'))
    assert _all_finite(ckpt)
    assert torch.isfinite(ckpt['state_dict']['queue']).all()


def _ddp_nan_on_rank1(rank, world_size, work):
    from mmssl_ext.engine.hooks import nonfinite_loss_hook as m
    hook = m.NonFiniteLossHook()

    class _R:  # the few runner attributes the hook reads
        iter, epoch = 6, 1

        class message_hub:
            @staticmethod
            def get_info(key, default=None):
                return f'{work}/iter_6.pth'

    outputs = dict(loss=torch.tensor(1.), loss_x=torch.tensor(1.))
    hook.after_train_iter(_R, 2, None, outputs)  # all finite: no error
    if rank == 1:
        outputs = dict(loss=torch.tensor(float('inf')),
                       loss_x=torch.tensor(float('inf')))
    try:
        hook.after_train_iter(_R, 3, None, outputs)
    except FloatingPointError as e:
        return str(e)
    return None


def test_ddp_all_ranks_stop_together(tmp_path):
    msgs = run_in_processes(_ddp_nan_on_rank1, world_size=2,
                            args=(str(tmp_path), ), timeout=60)
    assert 'rank(s) [1]' in msgs[0] and 'iteration 7 ' in msgs[0]
    assert 'loss_x=inf' in msgs[1] and 'iteration 7 ' in msgs[1]
