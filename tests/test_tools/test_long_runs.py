"""Long runs through the launchers (subprocesses, tiny synthetic MoCo v2):
tools/train.py stops on SIGTERM with status 75 and resumes; torchrun
restarts a killed worker and the run ends equal to an uninterrupted one;
two "nodes" on localhost equal one node x 2 processes; slurm_train.sh
requeues; bad input (unwritable work dir, damaged newest checkpoint) is
named before training. About a minute and a half on 2 cores."""
import glob
import os
import os.path as osp
import re
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
CFG = osp.join(ROOT, 'tests', 'data', 'configs', 'mocov2_tiny_synthetic.py')
# 2 processes x batch 8 over 32 samples: 2 iterations per epoch, 20 in all;
# a checkpoint every 2 iterations
ITER_OPTS = ['default_hooks.checkpoint.by_epoch=False',
             'default_hooks.checkpoint.interval=2',
             'default_hooks.checkpoint.max_keep_ckpts=-1',
             'train_cfg.max_epochs=10']


def _env(**extra):
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=ROOT,
               PYTHON=sys.executable)
    for k in ('SLURM_RESTART_COUNT', 'TORCHELASTIC_RESTART_COUNT',
              'MMSSL_PREEMPT_FILE'):
        env.pop(k, None)
    env.update(extra)
    return env


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _latest(work):
    try:
        with open(osp.join(work, 'last_checkpoint')) as f:
            m = re.search(r'iter_(\d+)\.pth$', f.read().strip())
        return int(m.group(1)) if m else 0
    except OSError:
        return 0


def _same_final(a, b):
    ca, cb = torch.load(a), torch.load(b)
    assert ca['meta']['iter'] == cb['meta']['iter']
    for k, v in ca['state_dict'].items():
        assert torch.equal(v, cb['state_dict'][k]), k
    for k, s in ca['optimizer']['state'].items():
        assert torch.equal(s['momentum_buffer'],
                           cb['optimizer']['state'][k]['momentum_buffer'])


def _dist(work, nproc, port, **env):
    return subprocess.Popen(
        ['bash', 'tools/dist_train.sh', CFG, str(nproc), '--work-dir', work,
         '--no-validate', '--cfg-options'] + ITER_OPTS,
        cwd=ROOT, env=_env(PORT=str(port), **env), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)


@pytest.fixture(scope='module')
def reference(tmp_path_factory):
    """One node x 2 processes, uninterrupted."""
    work = str(tmp_path_factory.mktemp('ref'))
    p = _dist(work, 2, _free_port())
    out = p.communicate(timeout=300)[0]
    assert p.returncode == 0, out[-3000:]
    return osp.join(work, 'iter_20.pth')


def test_two_nodes_on_localhost_equal_one_node(reference, tmp_path):
    work, port = str(tmp_path / 'w'), _free_port()
    nodes = [_dist(work, 1, port, NNODES='2', NODE_RANK=str(r),
                   MASTER_ADDR='127.0.0.1') for r in (0, 1)]
    outs = [n.communicate(timeout=300)[0] for n in nodes]
    for n, out in zip(nodes, outs):
        assert n.returncode == 0, out[-3000:]
    _same_final(reference, osp.join(work, 'iter_20.pth'))


def _worker_pid(work, local_rank):
    for d in glob.glob('/proc/[0-9]*'):
        try:
            cmd = open(f'{d}/cmdline', 'rb').read().split(b'\0')
            if b'--work-dir' not in cmd or work.encode() not in cmd:
                continue
            env = open(f'{d}/environ', 'rb').read().split(b'\0')
        except OSError:
            continue
        if f'LOCAL_RANK={local_rank}'.encode() in env and \
                any(c.endswith(b'train.py') for c in cmd):
            return int(osp.basename(d))
    return None


def test_elastic_restart_after_killed_worker(reference, tmp_path):
    """MAX_RESTARTS=1: rank 1 is SIGKILLed mid-run (checkpoint iter_4 or
    later written); torchrun restarts both workers, which resume from the
    last checkpoint and finish equal to the uninterrupted run."""
    work = str(tmp_path / 'w')
    port = _free_port()
    p = _dist(work, 2, port, MAX_RESTARTS='1', RDZV_BACKEND='c10d',
              RDZV_ENDPOINT=f'127.0.0.1:{port}', RDZV_ID='elastic-test')
    try:
        deadline = time.time() + 240
        killed_at = None
        while time.time() < deadline and p.poll() is None:
            if 4 <= _latest(work) < 16:
                pid = _worker_pid(work, 1)
                if pid:
                    killed_at = _latest(work)
                    os.kill(pid, signal.SIGKILL)
                    break
            time.sleep(0.01)
        assert killed_at, 'training ended before a worker could be killed'
        out = p.communicate(timeout=300)[0]
    finally:
        p.kill()
        p.wait()
    assert p.returncode == 0, out[-4000:]
    m = re.search(r'TORCHELASTIC_RESTART_COUNT=1: resuming from \S+'
                  r'iter_(\d+)\.pth', out)
    assert m, out[-4000:]
    # resumed from the checkpoint that was the latest at the kill (or a
    # later one): at most one checkpoint interval (2 iterations) is lost
    assert int(m.group(1)) >= killed_at
    _same_final(reference, osp.join(work, 'iter_20.pth'))


def test_train_py_sigterm_twice_then_resume(tmp_path):
    """SIGTERM twice mid-run: exit status 75, one complete checkpoint named
    by last_checkpoint, no temporary file; `--resume` with a changed config
    is refused naming the key; plain `--resume` finishes."""
    work = str(tmp_path / 'w')
    cmd = [sys.executable, 'tools/train.py', CFG, '--work-dir', work,
           '--no-validate', '--cfg-options', 'train_cfg.max_epochs=6']
    p = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in p.stdout:
        lines.append(line)
        if re.search(r'Epoch\(train\)\s+\[\s*2\]', line):
            p.send_signal(signal.SIGTERM)
            p.send_signal(signal.SIGTERM)
            break
    lines += p.stdout.readlines()
    p.wait(timeout=120)
    out = ''.join(lines)
    assert p.returncode == 75, out[-3000:]
    assert 'SIGTERM received: stopped after iteration' in out
    n = _latest(work)
    assert 4 < n < 24, out[-3000:]
    ckpt = torch.load(osp.join(work, f'iter_{n}.pth'))
    assert ckpt['meta']['preempted'] == 'SIGTERM'
    assert not glob.glob(osp.join(work, '.*.tmp'))
    # a requeue with a changed config is refused, naming the key
    r = subprocess.run(cmd[:-1] + ['train_cfg.max_epochs=7', '--resume'],
                       cwd=ROOT, env=_env(), capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2, r.stderr[-3000:]
    assert 'train_cfg.max_epochs (6 -> 7)' in r.stderr
    # a requeue (SLURM_RESTART_COUNT) resumes without --resume
    r = subprocess.run(cmd, cwd=ROOT, env=_env(SLURM_RESTART_COUNT='1'),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert f'SLURM_RESTART_COUNT=1: resuming from {work}/iter_{n}.pth' in \
        r.stdout
    assert torch.load(osp.join(work, 'epoch_6.pth'))['meta']['iter'] == 24


def test_slurm_train_requeues_when_preempted(tmp_path):
    """tools/slurm_train.sh with stand-ins for srun / scontrol: SIGUSR1 to
    the batch shell reaches the task, which exits 75; the script requeues
    the job (scontrol requeue $SLURM_JOB_ID)."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    log = tmp_path / 'scontrol.log'
    (bin_dir / 'srun').write_text(
        '#!/usr/bin/env bash\n'
        '# stand-in: drop the srun options, run the task on this machine\n'
        'while [ "$1" != python ]; do shift; done\n'
        'args=("${@/--launcher=slurm/--launcher=none}")\n'
        'exec "${args[@]}"\n')
    (bin_dir / 'scontrol').write_text(
        f'#!/usr/bin/env bash\necho "$@" >> {log}\n')
    (bin_dir / 'python').write_text(  # this environment's interpreter
        f'#!/usr/bin/env bash\nexec {sys.executable} "$@"\n')
    for f in ('srun', 'scontrol', 'python'):
        os.chmod(bin_dir / f, 0o755)
    work = str(tmp_path / 'w')
    env = _env(PATH=f'{bin_dir}:{os.environ["PATH"]}', SLURM_JOB_ID='4242',
               GPUS='1', GPUS_PER_NODE='1')
    p = subprocess.Popen(
        ['bash', 'tools/slurm_train.sh', 'part', 'job', CFG, work,
         '--no-validate', '--cfg-options', 'train_cfg.max_epochs=40'],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)
    lines = []
    for line in p.stdout:
        lines.append(line)
        if re.search(r'Epoch\(train\)\s+\[\s*1\]', line):
            p.send_signal(signal.SIGUSR1)
            break
    lines += p.stdout.readlines()
    p.wait(timeout=120)
    out = ''.join(lines)
    assert p.returncode == 0, out[-3000:]
    assert 'preempted: requeueing job 4242' in out
    assert log.read_text().split() == ['requeue', '4242']
    assert torch.load(osp.join(work, f'iter_{_latest(work)}.pth'))[
        'meta']['preempted'] == 'SIGUSR1'


def test_unwritable_work_dir_named_before_training(tmp_path):
    blocker = tmp_path / 'a_file'
    blocker.write_text('')
    work = str(blocker / 'w')
    r = subprocess.run([sys.executable, 'tools/train.py', CFG, '--work-dir',
                        work], cwd=ROOT, env=_env(), capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2
    assert f'work_dir "{work}" is not writable' in r.stderr
    assert 'Epoch(train)' not in r.stdout + r.stderr
