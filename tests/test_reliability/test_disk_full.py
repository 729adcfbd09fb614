"""A full disk and damaged checkpoints: a checkpoint write that fails for
lack of space (here: a file-size limit, ``RLIMIT_FSIZE``, in a subprocess;
mounting a small file system needs privileges a test should not assume)
leaves the previous checkpoint intact and no temporary file, and its error
names the path, the size needed and the space left; auto-resume facing a
damaged newest checkpoint names it and offers (or takes) the newest intact
one."""
import os
import os.path as osp
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from mmssl_ext.utils.resume import (DamagedCheckpointError,
                                    checkpoint_is_intact,
                                    resolve_auto_resume)

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))

_WRITER = textwrap.dedent('''
    import resource, sys, torch
    import mmssl_ext  # the atomic backend
    from mmengine.runner.checkpoint import save_checkpoint
    from mmssl_ext.utils.checkpoint_compat import CheckpointWriteError
    path, limit = sys.argv[1], int(sys.argv[2])
    args = dict(backend='atomic_local')
    save_checkpoint({'w': torch.ones(1000)}, path, backend_args=args)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    try:
        save_checkpoint({'w': torch.ones(100_000)}, path, backend_args=args)
    except CheckpointWriteError as e:
        print(e)
        sys.exit(3)
''')


def test_checkpoint_write_on_full_disk(tmp_path):
    path = str(tmp_path / 'iter_2.pth')
    script = tmp_path / 'writer.py'
    script.write_text(_WRITER)
    limit = 64 * 1024  # the first checkpoint (~5 KB) fits, the next does not
    r = subprocess.run([sys.executable, str(script), path, str(limit)],
                       cwd=ROOT, capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, PYTHONPATH=ROOT,
                                OMP_NUM_THREADS='1'))
    assert r.returncode == 3, r.stdout + r.stderr
    msg = r.stdout
    assert f'Cannot write checkpoint "{path}"' in msg
    assert 'File too large' in msg
    assert 'bytes needed' in msg and 'bytes free' in msg
    assert f'file-size limit (ulimit -f) {limit:,} bytes' in msg
    assert sorted(os.listdir(tmp_path)) == ['iter_2.pth', 'writer.py']
    assert torch.equal(torch.load(path)['w'], torch.ones(1000))


def _ckpt(path, v):
    torch.save({'v': v, 'w': torch.full((1000, ), float(v))}, path)
    time.sleep(0.01)  # distinct modification times


def test_auto_resume_damaged_newest_offers_intact(tmp_path):
    work = str(tmp_path)
    for i in (2, 4, 6):
        _ckpt(osp.join(work, f'iter_{i}.pth'), i)
    newest = osp.join(work, 'iter_6.pth')
    with open(osp.join(work, 'last_checkpoint'), 'w') as f:
        f.write(newest)
    assert resolve_auto_resume(work) == newest
    # damage the newest: cut it short
    data = open(newest, 'rb').read()
    with open(newest, 'wb') as f:
        f.write(data[:len(data) // 2])
    assert not checkpoint_is_intact(newest)[0]
    with pytest.raises(DamagedCheckpointError) as e:
        resolve_auto_resume(work)
    msg = str(e.value)
    assert newest in msg and 'damaged' in msg
    intact = osp.join(work, 'iter_4.pth')
    assert f'The newest intact checkpoint is "{intact}"' in msg
    assert '--resume-fallback' in msg
    assert resolve_auto_resume(work, fallback=True) == intact
    # a flipped byte inside a member fails its CRC check
    raw = bytearray(open(intact, 'rb').read())
    at = raw.find(b'\x00\x00\x80\x40')  # a float 4.0 of the tensor
    raw[at + 3] ^= 0x01
    open(intact, 'wb').write(bytes(raw))
    ok, why = checkpoint_is_intact(intact)
    assert not ok and 'CRC' in why
    assert resolve_auto_resume(work, fallback=True) == \
        osp.join(work, 'iter_2.pth')


def test_auto_resume_never_silently_from_scratch(tmp_path):
    work = str(tmp_path)
    assert resolve_auto_resume(work) is None  # nothing there: a fresh run
    _ckpt(osp.join(work, 'iter_2.pth'), 2)  # a checkpoint, no pointer
    with pytest.raises(DamagedCheckpointError, match='missing'):
        resolve_auto_resume(work)
    with open(osp.join(work, 'iter_2.pth'), 'wb') as f:
        f.write(b'')
    with pytest.raises(DamagedCheckpointError,
                       match='no intact checkpoint is left'):
        resolve_auto_resume(work, fallback=True)


def test_train_py_damaged_newest(tmp_path):
    work = str(tmp_path / 'w')
    os.makedirs(work)
    _ckpt(osp.join(work, 'iter_2.pth'), 2)
    bad = osp.join(work, 'iter_4.pth')
    open(bad, 'wb').write(b'PK\x03\x04 truncated')
    open(osp.join(work, 'last_checkpoint'), 'w').write(bad)
    cfg = osp.join(ROOT, 'tests', 'data', 'configs',
                   'mocov2_tiny_synthetic.py')
    r = subprocess.run([sys.executable, 'tools/train.py', cfg, '--work-dir',
                        work, '--resume'], cwd=ROOT, capture_output=True,
                       text=True, timeout=120,
                       env=dict(os.environ, PYTHONPATH=ROOT,
                                OMP_NUM_THREADS='1'))
    assert r.returncode == 2
    assert bad in r.stderr and osp.join(work, 'iter_2.pth') in r.stderr
    assert 'Epoch(train)' not in r.stdout + r.stderr
