"""Long runs: how fast a preempted run gets out, and how big the
checkpoints of the ImageNet recipes are.

    python benchmarks/bench_preemption.py                # both parts
    python benchmarks/bench_preemption.py --sizes-only   # no training

1. Seconds from the signal to the process exit of ``tools/train.py`` on the
   digits recipes (InterCLR, InvP; the recipes as they are, with their two
   data-loader workers, logging every iteration): SIGTERM is sent when the
   log shows iteration 3 of epoch 1; the time until the process has exited
   (status 75) covers finishing the running iteration, the rank agreement,
   writing the checkpoint (atomic, fsync) and shutting down. Median of
   ``--repeats`` (5) runs per recipe; the hook's own figure (signal ->
   checkpoint written) beside it.
2. Checkpoint size of the ImageNet InterCLR and InvP recipes, computed from
   the configs: the model built (on the ``meta`` device where possible), bytes
   of every state-dict tensor (weights, both encoders, the 1.28M-row banks,
   label / neighbour tables, queues) plus the SGD momentum buffers of the
   trainable parameters (what ``save_checkpoint`` writes; the rest -- meta,
   message hub, schedulers, random states -- is kilobytes).

Writes ``benchmarks/results/preemption.json``.
"""
import argparse
import json
import os
import os.path as osp
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..'))
sys.path.insert(0, ROOT)

DIGITS = {
    'InterCLR': 'configs/interclr/'
    'interclr-moco_resnet18-cifar_1xb64-coslr-20e_digits.py',
    'InvP': 'configs/invp/invp_resnet18-cifar_1xb64-coslr-20e_digits.py',
}
IMAGENET = {
    'InterCLR': 'configs/interclr/'
    'interclr-moco_resnet50_8xb32-coslr-200e_in1k.py',
    'InvP (200e)': 'configs/invp/invp_resnet50_8xb16-coslr-200e_in1k.py',
}


def time_to_exit(config: str, work_dir: str) -> dict:
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1')
    cmd = [sys.executable, 'tools/train.py', config, '--work-dir', work_dir,
           '--no-validate', '--cfg-options', 'default_hooks.logger.interval=1']
    p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    out, t0 = [], None
    for line in p.stdout:
        out.append(line)
        if re.search(r'Epoch\(train\)\s+\[\s*1\]\[\s*3/', line):
            t0 = time.monotonic()
            p.send_signal(signal.SIGTERM)
            break
    rest = p.stdout.read()
    p.wait()
    t1 = time.monotonic()
    out.append(rest)
    text = ''.join(out)
    if t0 is None or p.returncode != 75:
        raise RuntimeError(f'{config}: status {p.returncode}\n{text[-3000:]}')
    m = re.search(r'stopped after iteration (\d+) \(checkpoint (\S+), '
                  r'([\d.]+) s after the signal', text)
    return dict(seconds_to_exit=round(t1 - t0, 2),
                seconds_to_checkpoint=float(m.group(3)),
                iteration=int(m.group(1)),
                checkpoint_bytes=osp.getsize(m.group(2).rstrip(',')))


def checkpoint_size(config: str) -> dict:
    import torch
    from mmengine.config import Config

    import mmssl_ext  # noqa: F401
    from mmssl_ext.registry import MODELS
    cfg = Config.fromfile(osp.join(ROOT, config))
    try:  # no memory where the model allows it
        with torch.device('meta'):
            model = MODELS.build(cfg.model)
    except RuntimeError:  # .item() in a constructor: build it for real
        model = MODELS.build(cfg.model)
    state = sum(t.numel() * t.element_size()
                for t in model.state_dict().values())
    momentum = sum(p.numel() * p.element_size()
                   for p in model.parameters() if p.requires_grad)
    banks = {k: t.numel() * t.element_size()
             for k, t in model.state_dict().items() if t.numel() > 10**7}
    return dict(state_dict_bytes=state, sgd_momentum_bytes=momentum,
                total_bytes=state + momentum, largest_buffers=banks)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--repeats', type=int, default=5)
    ap.add_argument('--sizes-only', action='store_true')
    args = ap.parse_args()
    res = dict(machine=f'{os.cpu_count()}-core CPU', sizes={}, exit={})
    for name, cfg in IMAGENET.items():
        res['sizes'][name] = s = checkpoint_size(cfg)
        print(f'{name:12s} checkpoint {s["total_bytes"] / 2**20:8.1f} MiB '
              f'(state dict {s["state_dict_bytes"] / 2**20:.1f}, momentum '
              f'{s["sgd_momentum_bytes"] / 2**20:.1f}); largest: ' +
              ', '.join(f'{k} {v / 2**20:.1f} MiB'
                        for k, v in s['largest_buffers'].items()),
              flush=True)
    if not args.sizes_only:
        for name, cfg in DIGITS.items():
            runs = []
            for _ in range(args.repeats):
                with tempfile.TemporaryDirectory() as d:
                    runs.append(time_to_exit(cfg, d))
                print(name, runs[-1], flush=True)
            res['exit'][name] = dict(
                runs=runs,
                median_seconds_to_exit=statistics.median(
                    r['seconds_to_exit'] for r in runs),
                median_seconds_to_checkpoint=statistics.median(
                    r['seconds_to_checkpoint'] for r in runs))
        print('\n| recipe | signal -> exit, s (median of '
              f'{args.repeats}) | signal -> checkpoint written, s | '
              'checkpoint |')
        print('| --- | --- | --- | --- |')
        for name, r in res['exit'].items():
            print(f'| {name} digits | {r["median_seconds_to_exit"]:.2f} | '
                  f'{r["median_seconds_to_checkpoint"]:.2f} | '
                  f'{r["runs"][0]["checkpoint_bytes"] / 2**20:.1f} MiB |')
    out = osp.join(ROOT, 'benchmarks', 'results', 'preemption.json')
    if args.sizes_only and osp.exists(out):
        with open(out) as f:
            old = json.load(f)
        old['sizes'] = res['sizes']
        res = old
    with open(out, 'w') as f:
        json.dump(res, f, indent=1)
    print('wrote', out)


if __name__ == '__main__':
    main()
