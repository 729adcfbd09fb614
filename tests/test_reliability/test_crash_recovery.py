"""Crash recovery: atomic checkpoint writes survive SIGKILL, ``--resume``
continues after a SIGKILL mid-epoch, and corrupt checkpoints give errors
that name the file."""
import os
import os.path as osp
import re
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from mmengine.runner import Runner
from reliability_toys import runner_cfg

from mmssl_ext.utils.checkpoint_compat import (ATOMIC_BACKEND,
                                               AtomicLocalBackend,
                                               CheckpointLoadError,
                                               atomic_write_bytes,
                                               checked_checkpoint_loading)

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
CFG = osp.join(ROOT, 'tests', 'data', 'configs', 'mocov2_tiny_synthetic.py')


def _env():
    path = os.pathsep.join(
        p for p in (ROOT, os.environ.get('PYTHONPATH', '')) if p)
    return dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=path)


# ---------------------------------------------------------------- atomic put
def test_atomic_backend_is_selected_not_imposed():
    from mmengine.config import Config
    from mmengine.fileio import LocalBackend, get_file_backend
    path = '/some/where/x.pth'
    # importing mmssl_ext replaces none of mmengine's backends
    assert type(get_file_backend(path)) is LocalBackend
    # runs select the atomic one by name: the default runtime does
    args = Config.fromfile(CFG).default_hooks.checkpoint.backend_args
    assert args == dict(backend=ATOMIC_BACKEND)
    assert isinstance(get_file_backend(path, backend_args=args),
                      AtomicLocalBackend)


def test_checked_loading_is_scoped():
    from mmengine.runner import CheckpointLoader
    from mmengine.runner.checkpoint import load_from_local
    from mmssl_ext.utils.checkpoint_compat import load_from_local_checked
    assert CheckpointLoader._get_checkpoint_loader('/x.pth') is \
        load_from_local
    with pytest.raises(KeyError):
        with checked_checkpoint_loading():
            assert CheckpointLoader._get_checkpoint_loader('/x.pth') is \
                load_from_local_checked
            raise KeyError('restored also on an error')
    assert CheckpointLoader._get_checkpoint_loader('/x.pth') is \
        load_from_local


def test_atomic_write_failure_keeps_previous_file(tmp_path, monkeypatch):
    target = tmp_path / 'ckpt.pth'
    atomic_write_bytes(b'old complete content', target)

    def boom(fd):
        raise OSError('disk full (simulated)')

    monkeypatch.setattr(os, 'fsync', boom)
    with pytest.raises(OSError, match='simulated'):
        atomic_write_bytes(b'new content that never completes', target)
    assert target.read_bytes() == b'old complete content'
    assert os.listdir(tmp_path) == ['ckpt.pth']  # temporary file removed


def test_atomic_write_keeps_symlink_and_umask(tmp_path):
    real = tmp_path / 'real.pth'
    link = tmp_path / 'link.pth'
    real.write_bytes(b'a')
    link.symlink_to(real)
    atomic_write_bytes(b'b', link)
    assert link.is_symlink() and real.read_bytes() == b'b'
    umask = os.umask(0)
    os.umask(umask)
    assert (os.stat(real).st_mode & 0o777) == (0o666 & ~umask)


_WRITER = textwrap.dedent('''
    import importlib.util, sys, torch
    # what `import mmssl_ext` does, without importing the whole package
    spec = importlib.util.spec_from_file_location('cc', sys.argv[2])
    cc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cc)
    cc.allow_mmengine_checkpoints()
    from mmengine.runner.checkpoint import save_checkpoint
    path = sys.argv[1]
    v = 0
    while True:
        save_checkpoint({'v': v, 'w': torch.full((6_000_000, ), float(v))},
                        path, backend_args=dict(backend=cc.ATOMIC_BACKEND))
        print('saved', v, flush=True)
        v += 1
''')


def test_sigkill_during_checkpoint_write(tmp_path):
    """Kill a process while it is writing a checkpoint (its temporary file
    exists): the checkpoint under the final name is still complete."""
    path = str(tmp_path / 'iter_1.pth')
    script = tmp_path / 'writer.py'
    script.write_text(_WRITER)
    compat = osp.join(ROOT, 'mmssl_ext', 'utils', 'checkpoint_compat.py')
    p = subprocess.Popen([sys.executable, str(script), path, compat],
                         cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
    try:
        for line in p.stdout:  # mmengine's logger also prints here
            if line.startswith('saved 0'):
                break
        else:
            pytest.fail('the writer process died')
        deadline = time.time() + 60
        while time.time() < deadline:  # wait until a write is in progress
            if any(n.endswith('.tmp') for n in os.listdir(tmp_path)):
                os.kill(p.pid, signal.SIGKILL)
                break
            time.sleep(0.0005)
        else:
            pytest.fail('never saw a write in progress')
    finally:
        p.kill()
        p.wait()
    leftovers = [n for n in os.listdir(tmp_path) if n.endswith('.tmp')]
    assert leftovers, 'the kill did not land during a write'
    ckpt = torch.load(path)  # complete, loads with weights_only=True
    assert torch.equal(ckpt['w'], torch.full((6_000_000, ), float(ckpt['v'])))
    # the next save of the same name (e.g. after resuming) removes the
    # dead writer's partial temporary file
    time.sleep(1.1)
    atomic_write_bytes(b'x', path)
    assert sorted(os.listdir(tmp_path)) == ['iter_1.pth', 'writer.py']


# --------------------------------------------------- corrupt checkpoints
def _truncate(src, dst, frac=0.5):
    data = open(src, 'rb').read()
    with open(dst, 'wb') as f:
        f.write(data[:int(len(data) * frac)])


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    work = tmp_path_factory.mktemp('trained')
    Runner(**runner_cfg(work, max_iters=4, interval=2)).train()
    return work


@pytest.mark.parametrize('mode', ['resume', 'load_from'])
def test_corrupt_checkpoint_named_in_error(trained, tmp_path, mode):
    bad = str(tmp_path / 'truncated.pth')
    _truncate(osp.join(trained, 'iter_4.pth'), bad)
    runner = Runner(**runner_cfg(tmp_path / 'w', max_iters=6,
                                 resume=mode == 'resume', load_from=bad))
    with pytest.raises(CheckpointLoadError) as e, \
            checked_checkpoint_loading():
        runner.load_or_resume()
    assert bad in str(e.value) and 'truncated' in str(e.value)
    assert 'pickle' not in str(e.value).lower()


def _work_dir_with_latest(trained, tmp_path, content):
    work = tmp_path / 'auto'
    work.mkdir()
    for n in ('iter_2.pth', 'iter_4.pth'):
        os.link(osp.join(trained, n), work / n)
    (work / 'last_checkpoint').write_text(content(work))
    return work


def test_auto_resume_corrupt_latest_is_an_error(trained, tmp_path):
    """Decision: auto-resume stops with an error naming the corrupt latest
    checkpoint instead of silently falling back to an older one."""
    def make_latest(work):
        bad = work / 'iter_6.pth'
        _truncate(work / 'iter_4.pth', bad, 0.3)
        return str(bad)

    work = _work_dir_with_latest(trained, tmp_path, make_latest)
    runner = Runner(**runner_cfg(work, max_iters=8, resume=True))
    with pytest.raises(CheckpointLoadError, match='iter_6.pth'), \
            checked_checkpoint_loading():
        runner.load_or_resume()


def test_auto_resume_empty_last_checkpoint(trained, tmp_path):
    work = _work_dir_with_latest(trained, tmp_path, lambda w: '')
    runner = Runner(**runner_cfg(work, max_iters=8, resume=True))
    with pytest.raises(CheckpointLoadError, match='last_checkpoint'), \
            checked_checkpoint_loading():
        runner.load_or_resume()


def test_train_py_resume_corrupt_checkpoint(trained, tmp_path):
    bad = str(tmp_path / 'broken.pth')
    with open(bad, 'wb') as f:
        f.write(b'')
    p = subprocess.run(
        [sys.executable, 'tools/train.py', CFG, '--work-dir',
         str(tmp_path / 'w'), '--resume', bad], cwd=ROOT, env=_env(),
        capture_output=True, text=True, timeout=300)
    assert p.returncode != 0
    last = p.stderr.strip().splitlines()[-1]
    assert last.startswith('mmssl_ext.utils.checkpoint_compat.'
                           'CheckpointLoadError') and bad in last, last


# ---------------------------------------------- SIGKILL mid-epoch + resume
def _read_latest(work):
    try:
        with open(osp.join(work, 'last_checkpoint')) as f:
            return f.read().strip()
    except OSError:
        return ''


def _latest_iter(work):
    m = re.search(r'iter_(\d+)\.pth$', _read_latest(work))
    return int(m.group(1)) if m else 0


@pytest.mark.parametrize('loop', ['epoch', 'iter'])
def test_sigkill_mid_epoch_then_auto_resume(tmp_path, loop):
    """tools/train.py is SIGKILLed during training (32 samples / batch 8 = 4
    iterations per epoch, 12 in all, checkpoints every 2 iterations; killed
    as soon as iter_6.pth or a later one is the latest, i.e. while it runs
    epoch 2 or 3); ``--resume`` picks the latest complete checkpoint and
    trains to the end."""
    work = str(tmp_path / 'w')
    opts = ['default_hooks.checkpoint.by_epoch=False',
            'default_hooks.checkpoint.interval=2',
            'default_hooks.checkpoint.max_keep_ckpts=-1',
            'default_hooks.logger.interval=1']
    if loop == 'epoch':
        opts += ['train_cfg.max_epochs=3', 'train_cfg.val_interval=100']
    else:
        opts += ['train_cfg._delete_=True',
                 'train_cfg.type=IterBasedTrainLoop',
                 'train_cfg.max_iters=12', 'train_cfg.val_interval=100']
    cmd = [sys.executable, 'tools/train.py', CFG, '--work-dir', work,
           '--cfg-options'] + opts
    p = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and p.poll() is None:
            if 6 <= _latest_iter(work) < 12:
                os.kill(p.pid, signal.SIGKILL)
                break
            time.sleep(0.005)
        else:
            pytest.fail(f'training ended (rc={p.poll()}) or timed out '
                        'before it could be killed')
    finally:
        p.kill()
        p.wait()
    assert p.returncode == -signal.SIGKILL
    latest = _read_latest(work)
    killed_at = torch.load(latest)['meta']  # complete, loads safely
    n, epoch = killed_at['iter'], killed_at['epoch']
    assert latest.endswith(f'iter_{n}.pth') and 6 <= n < 12

    r = subprocess.run(cmd + ['--resume'], cwd=ROOT, env=_env(),
                       capture_output=True, text=True, timeout=300)
    log = r.stdout + r.stderr
    assert r.returncode == 0, log[-4000:]
    assert f'Auto resumed from the latest checkpoint {latest}' in log
    assert f'resumed epoch: {epoch}, iter: {n}' in log
    final = torch.load(_read_latest(work))
    sd = final['state_dict']
    assert all(torch.isfinite(v).all() for v in sd.values()
               if v.is_floating_point())
    # the resumed run skips the batches already trained: epoch-based
    # (PreemptionHook: meta 'epoch' of an iteration checkpoint counts the
    # epochs finished before it, train_state the batches of the current
    # one) and iteration-based (mmengine) alike
    assert final['meta']['iter'] == 12
    if loop == 'epoch':
        assert final['meta']['epoch'] == 2  # saved during the 3rd epoch
        assert (f'Resuming inside epoch {epoch + 1}: skipping the '
                f'{n - 4 * epoch} batches') in log
