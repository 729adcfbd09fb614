"""README's main job: self-supervised pre-training on the embedded digits,
ending with kNN accuracy on the digits test split.

    python tools/demo.py                       # InterCLR vs MoCo v2
    python tools/demo.py --rows simclr bsim-simclr --epochs 6 --seed 1

The headline method (InterCLR) and its base (MoCo v2) are pre-trained side
by side (one process each, one thread each: the two cores of a small
machine) with the digits recipes of ``configs/``, ``--epochs`` epochs of
62 iterations of batch 64 (the recipes' 20-epoch schedule shortened in
proportion). Each run records the validation kNN top-1 (500 held-out
training digits against the other 3,500) after every epoch. At the end,
on the 1,000 test digits with the 4,000 training digits as the bank, the
script prints weighted-kNN top-1 (k=200, sigma=0.07), few-label kNN (10
labelled digits per class, 5 draws) and a linear probe, for both methods
and for the two trivial baselines every result must beat: the same network
at random initialisation, and raw pixels. It saves the validation curves
as ``<work-dir>/demo_curves.png``.

The protocol is the digits quality benchmark's
(``benchmarks/digits_rows.py``), run for two rows and one seed.
"""
import argparse
import logging
import multiprocessing as mp
import os
import os.path as osp
import sys
import time
from concurrent.futures import ProcessPoolExecutor

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..'))
sys.path.insert(0, osp.join(ROOT, 'benchmarks'))


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--rows', nargs=2, default=['mocov2', 'interclr'],
                   metavar=('BASE', 'METHOD'),
                   help='two rows of benchmarks/digits_rows.py (default: '
                   'mocov2 interclr)')
    p.add_argument('--epochs', type=int, default=6,
                   help='pre-training epochs (the recipes are written for '
                   '20; knobs tied to the schedule are scaled in '
                   'proportion)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs', 'demo'))
    return p.parse_args()


def _run(task):
    """One row in its own process, one thread; ``('raw pixels', base)``:
    the raw pixels of the base row's data."""
    row, seed, epochs, work_dir = task
    recipe = row[1] if isinstance(row, tuple) else row
    row = row[0] if isinstance(row, tuple) else row
    os.environ['OMP_NUM_THREADS'] = '1'
    import torch
    torch.set_num_threads(1)
    os.chdir(ROOT)
    sys.path.insert(0, ROOT)
    import mmssl_ext  # noqa: F401
    from mmssl_ext.utils.quiet import silence_known_warnings
    silence_known_warnings()  # known-harmless notices, this entry point only
    from digits_rows import (curve_of, evaluate_features, prepare,
                             raw_pixel_features, test_features)
    from mmengine.runner import Runner
    t0 = time.time()
    cfg, moved = prepare(recipe, seed, epochs, work_dir,
                         curve=row != 'raw pixels')
    out = dict(row=row, scaled=moved)
    if row == 'raw pixels':
        feats = raw_pixel_features(cfg)
    else:
        # progress of each run every 20 iterations (console and log file);
        # the runner is built quietly, without its environment, config and
        # hook listings
        cfg.default_hooks.logger = dict(type='LoggerHook', interval=20)
        runner = Runner.from_cfg(cfg)
        silence_known_warnings(runner.logger)
        for h in runner.logger.handlers:
            h.setLevel(logging.INFO)
        runner.logger.setLevel(logging.INFO)
        runner.train()
        out['curve'] = curve_of(runner)
        out['init_val'] = out['curve'][0]
        feats = test_features(runner, cfg)
        # the same network at initialisation (same seed, same init)
        init = Runner.from_cfg(cfg.copy())
        silence_known_warnings(init.logger)
        init._init_model_weights()
        out['init'] = evaluate_features(*test_features(init, cfg))
    out.update(evaluate_features(*feats))
    out['seconds'] = time.time() - t0
    return out


def main():
    args = parse_args()
    os.chdir(ROOT)
    base, method = args.rows
    t0 = time.time()
    tasks = [(method, args.seed, args.epochs, args.work_dir),
             (base, args.seed, args.epochs, args.work_dir)]
    with ProcessPoolExecutor(2, mp_context=mp.get_context('spawn'),
                             max_tasks_per_child=1) as pool:
        futures = [pool.submit(_run, t) for t in tasks]
        raw = _run((('raw pixels', base), args.seed, args.epochs,
                    args.work_dir))
        res = {f.result()['row']: f.result() for f in futures}
    m, b = res[method], res[base]
    print('\n' + '=' * 86)
    print(f'Embedded digits, {args.epochs} epochs, seed {args.seed}. Test '
          'split (1,000 digits), bank = the 4,000 training digits.')
    print('kNN: weighted, k=200, sigma=0.07; few-label: 10 labelled digits '
          'per class, 5 draws; linear: L-BFGS probe.')
    print(f"{'':34}{'kNN top-1':>11}{'few-label':>11}{'linear':>9}"
          f"{'train s':>9}")
    rows = [(f'{method}', m), (f'{base} (its base)', b),
            (f'random init ({base} network)', b['init']),
            ('raw pixels', raw)]
    for name, r in rows:
        secs = f"{r['seconds']:.0f}" if 'curve' in r else '-'
        print(f"{name:34}{r['knn_top1']:>10.2f}%{r['few_knn_top1']:>10.2f}%"
              f"{r['linear_top1']:>8.2f}%{secs:>9}")
    print('=' * 86)
    for name, r in ((method, m), (base, b)):
        print(f"{name}: validation kNN top-1 by epoch: "
              + ' '.join(f'{v:.1f}' for v in r['curve']))
    path = osp.join(args.work_dir, 'demo_curves.png')
    _plot(path, [(method, m), (base, b)], raw_val=None)
    print(f'curves: {path}')
    print(f'demo finished in {(time.time() - t0) / 60:.1f} min')


def _plot(path, rows, raw_val=None):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, r in rows:
        ax.plot(range(len(r['curve'])), r['curve'], marker='o', label=name)
    ax.set_xlabel('epoch (0 = random initialisation)')
    ax.set_ylabel('validation kNN top-1 (%)')
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    os.makedirs(osp.dirname(path), exist_ok=True)
    fig.savefig(path, dpi=100)


if __name__ == '__main__':
    main()
