"""CLD on the embedded digits: training time per iteration of NPID + CLD
against its base algorithm (NPID, full softmax), side by side in one
process, and optionally the kNN top-1 of both over several seeds.

    # time per iteration (same batches, interleaved rounds, medians)
    OMP_NUM_THREADS=1 python benchmarks/bench_cld.py time [--rounds 6]
    # kNN top-1 over seeds (runs tools/train.py; long on a CPU)
    OMP_NUM_THREADS=1 python benchmarks/bench_cld.py knn --seeds 0 1 2 \
        [--epochs 20] [--work-dir work_dirs/bench_cld]

Configs: configs/cld/cld-npid_resnet18-cifar_1xb64-coslr-20e_digits.py and
its baseline configs/cld/npid-fullsoftmax_resnet18-cifar_1xb64-coslr-20e_
digits.py (one view, no group branch). Prints Markdown tables and writes
JSON next to --out.
"""
import argparse
import copy
import json
import os
import os.path as osp
import platform
import re
import statistics
import subprocess
import sys
import time

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..'))
sys.path.insert(0, ROOT)
CLD_CFG = osp.join(ROOT, 'configs', 'cld',
                   'cld-npid_resnet18-cifar_1xb64-coslr-20e_digits.py')
BASE_CFG = osp.join(
    ROOT, 'configs', 'cld',
    'npid-fullsoftmax_resnet18-cifar_1xb64-coslr-20e_digits.py')
NAMES = {'NPID (full softmax)': BASE_CFG, 'NPID + CLD': CLD_CFG}


def _time(args):
    import torch
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner

    import mmssl_ext  # noqa: F401
    from mmssl_ext.registry import MODELS
    DefaultScope.get_instance('bench-cld', scope_name='mmssl_ext')
    torch.manual_seed(0)
    cfg = Config.fromfile(CLD_CFG)
    loader_cfg = copy.deepcopy(cfg.train_dataloader)
    loader_cfg.update(num_workers=0, persistent_workers=False)
    loader = Runner.build_dataloader(loader_cfg, seed=0)
    batches = []
    for i, b in enumerate(loader):
        batches.append(b)
        if len(batches) == args.iters:
            break
    models = {}
    for name, path in NAMES.items():
        c = Config.fromfile(path)
        m = MODELS.build(c.model)
        m.init_weights()
        m.train()
        ow = build_optim_wrapper(m, c.optim_wrapper)
        models[name] = (m, ow)

    def step(name, batch):
        m, ow = models[name]
        if name.startswith('NPID ('):  # the baseline sees one view
            batch = dict(batch, inputs=batch['inputs'][:1])
        m.train_step(batch, ow)

    for name in models:  # warm-up
        step(name, batches[0])
    times = {name: [] for name in models}
    for r in range(args.rounds):
        order = list(models) if r % 2 == 0 else list(models)[::-1]
        for name in order:
            t0 = time.perf_counter()
            for b in batches:
                step(name, b)
            times[name].append((time.perf_counter() - t0) / len(batches))
    med = {n: statistics.median(v) for n, v in times.items()}
    base = med['NPID (full softmax)']
    rows = [(n, med[n], med[n] / base) for n in models]
    print(f'\nper-iteration train step, batch 64, 32 px, ResNet-18 CIFAR '
          f'(16 base ch.), {torch.get_num_threads()} thread(s), '
          f'{platform.processor() or platform.machine()}; medians of '
          f'{args.rounds} interleaved rounds x {args.iters} iterations\n')
    print('| method | s / iter | ratio to NPID |')
    print('|---|---|---|')
    for n, t, r in rows:
        print(f'| {n} | {t:.3f} | {r:.2f} |')
    return dict(kind='time', rows=rows, rounds=args.rounds, iters=args.iters,
                raw=times)


def _knn(args):
    res = {}
    for name, path in NAMES.items():
        res[name] = []
        for seed in args.seeds:
            wd = osp.join(args.work_dir, f'{osp.basename(path)[:-3]}_s{seed}')
            cmd = [
                sys.executable, 'tools/train.py', path, '--work-dir', wd,
                '--cfg-options', f'randomness.seed={seed}',
                f'train_cfg.max_epochs={args.epochs}',
                f'train_cfg.val_interval={args.epochs}'
            ]
            if args.epochs != 20:
                cmd += [f'param_scheduler.0.T_max={args.epochs}',
                        f'param_scheduler.0.end={args.epochs}']
            t0 = time.time()
            p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                               env=dict(os.environ, PYTHONPATH=ROOT))
            out = p.stdout + p.stderr
            if p.returncode != 0:
                raise RuntimeError(out[-4000:])
            top1 = [float(x) for x in re.findall(r'knn/top1: ([0-9.]+)', out)]
            res[name].append(dict(seed=seed, top1=top1[-1],
                                  minutes=(time.time() - t0) / 60))
            print(name, res[name][-1], flush=True)
    print(f'\nkNN top-1 (k=200) on the digits test split after '
          f'{args.epochs} epochs, seeds {args.seeds}\n')
    print('| method | kNN top-1 mean | std | runs |')
    print('|---|---|---|---|')
    for name, runs in res.items():
        v = [r['top1'] for r in runs]
        sd = statistics.stdev(v) if len(v) > 1 else 0.
        print(f'| {name} | {statistics.mean(v):.2f} | {sd:.2f} | '
              f'{", ".join(f"{x:.2f}" for x in v)} |')
    return dict(kind='knn', epochs=args.epochs, results=res)


def main():
    p = argparse.ArgumentParser()
    p.add_argument('what', choices=['time', 'knn'])
    p.add_argument('--rounds', type=int, default=6)
    p.add_argument('--iters', type=int, default=3)
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--epochs', type=int, default=20)
    p.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs',
                                                  'bench_cld'))
    p.add_argument('--out', default=osp.join(ROOT, 'benchmarks', 'results'))
    args = p.parse_args()
    out = _time(args) if args.what == 'time' else _knn(args)
    os.makedirs(args.out, exist_ok=True)
    with open(osp.join(args.out, f'cld_{args.what}.json'), 'w') as f:
        json.dump(out, f, indent=1)


if __name__ == '__main__':
    main()
