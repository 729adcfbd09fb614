"""tools/train.py, --resume, tools/test.py and tools/dist_train.sh end to end
(subprocesses, tiny synthetic MoCo v2; tens of seconds in all)."""
import glob
import os
import os.path as osp
import socket
import subprocess
import sys

import pytest
import torch

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
CFG = osp.join(ROOT, 'tests', 'data', 'configs', 'mocov2_tiny_synthetic.py')


def _env():
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=ROOT)
    return env


def _run(cmd, timeout=300):
    p = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True,
                       text=True, timeout=timeout)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return p.stdout + p.stderr


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_train_then_resume_then_test(tmp_path):
    work = str(tmp_path / 'w')
    out = _run([sys.executable, 'tools/train.py', CFG, '--work-dir', work,
                '--cfg-options', 'train_cfg.max_epochs=1'])
    assert 'knn/top1' in out
    # known-harmless MMEngine / PyTorch notices silenced (mmssl_ext.utils.quiet)
    assert '"FileClient" will be deprecated' not in out
    assert '"HardDiskBackend" is the alias' not in out
    assert "'pin_memory' argument is set as true" not in out
    assert osp.exists(osp.join(work, 'epoch_1.pth'))
    # the checkpoint loads with torch's safe default (weights_only=True)
    ckpt = torch.load(osp.join(work, 'epoch_1.pth'))
    assert 'state_dict' in ckpt and 'queue' in ckpt['state_dict']
    # auto-resume from the latest checkpoint continues to epoch 2 (the
    # config's max_epochs instead of the first run's 1: a deliberate change)
    out = _run([sys.executable, 'tools/train.py', CFG, '--work-dir', work,
                '--resume', '--allow-config-change'])
    assert 'Resumed' in out or 'resumed' in out
    assert osp.exists(osp.join(work, 'epoch_2.pth'))
    out = _run([sys.executable, 'tools/test.py', CFG,
                osp.join(work, 'epoch_2.pth'), '--work-dir', work])
    assert 'knn/top1' in out


def test_dist_train_two_processes_gloo(tmp_path):
    work = str(tmp_path / 'dist')
    env_port = str(_free_port())
    p = subprocess.run(
        ['bash', 'tools/dist_train.sh', CFG, '2', '--work-dir', work,
         '--cfg-options', 'train_cfg.max_epochs=1'],
        cwd=ROOT, env=dict(_env(), PORT=env_port, PYTHON=sys.executable),
        capture_output=True, text=True, timeout=300)
    log = p.stdout + p.stderr
    assert p.returncode == 0, log[-4000:]
    # both ranks shut the process group down (no abort at interpreter exit)
    assert 'terminate called' not in log, log[-4000:]
    assert 'Distributed training: True' in log or 'distributed' in log
    ckpt = torch.load(osp.join(work, 'epoch_1.pth'))
    # 32 samples / (2 ranks x 8) = 2 iterations per epoch
    assert ckpt['meta']['iter'] == 2
