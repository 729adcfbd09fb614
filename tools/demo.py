"""README's main job: self-supervised pre-training on the embedded digits,
ending with kNN accuracy on the digits test split.

    python tools/demo.py                       # InterCLR vs MoCo v2
    python tools/demo.py --rows simclr bsim-simclr --seed 1

The headline method (InterCLR) and its base (MoCo v2) are pre-trained side
by side (one process each, one thread each: the two cores of a small
machine) with the digits recipes of ``configs/``, from the same initial
weights in every module they share and in the same data order,
``--epochs`` epochs of 62 iterations of batch 64 (the recipes' 20-epoch
schedule shortened in proportion), with a validation kNN point (500
held-out training digits against the other 3,500) every ``--val-interval``
epochs. At the end, on the 1,000 test digits with the 4,000 training
digits as the bank, it prints weighted-kNN top-1 (k=200, sigma=0.07),
few-label kNN (10 labelled digits per class, 5 draws) and a linear probe,
for both methods and for the two trivial baselines every result must beat:
the shared network at initialisation, and raw pixels.

One seed is not a result: CPU kernels differ between machines and move a
single run by several points. So the demo prints, beside its live seed,
the committed comparison of the same pair under the same protocol over
several seeds (``--committed``, written by the digits quality benchmark):
the mean paired difference, its 95 % interval, the verdict and the range
of the per-seed differences, and where the live seed falls in that range.
It saves the validation curves as ``<work-dir>/demo_curves.png``.
"""
import argparse
import json
import multiprocessing as mp
import os
import os.path as osp
import sys
import time
from concurrent.futures import ProcessPoolExecutor

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..'))
sys.path.insert(0, osp.join(ROOT, 'benchmarks'))
COMMITTED = osp.join(ROOT, 'benchmarks', 'results', 'demo_digits.json')
KEYS = (('knn_top1', 'kNN top-1'), ('few_knn_top1', 'few-label kNN'),
        ('linear_top1', 'linear probe'))


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
    p.add_argument('--val-interval', type=int, default=2,
                   help='epochs between validation points')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--committed', default=COMMITTED,
                   help='results JSON of the same pair and protocol over '
                   'several seeds (benchmarks/bench_quality_digits.py)')
    p.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs', 'demo'))
    return p.parse_args()


def _run(task):
    """One row of the demo: ``(row, seed, epochs, work_dir)`` with ``row``
    a recipe name, or ``(trivial row, recipe)`` for the random-init and
    raw-pixel rows of that recipe's network and data. The benchmark's
    ``run_one``, one thread, progress every 20 iterations."""
    from bench_quality_digits import run_one
    row, seed, epochs, work_dir = task[:4]
    val_interval = task[4] if len(task) > 4 else 2
    recipe = None
    if isinstance(row, tuple):
        row, recipe = row
    out = run_one((row, seed, epochs, work_dir, 1, val_interval, recipe,
                   True))
    if 'error' in out:
        raise RuntimeError(f"{row}: {out['error']}")
    return out


def committed_lines(path, base, method, epochs, live):
    """What the committed multi-seed results say of this pair under this
    protocol, and where the live seed falls: a list of lines."""
    from bench_quality_digits import paired
    if not osp.exists(path):
        return [f'No committed results at {path}: this single seed is not a '
                'result.']
    with open(path) as f:
        data = json.load(f)
    res = data['results']
    fps = {r['row']: r.get('fingerprint') for r in res}
    live_fp = {r['row']: r.get('fingerprint') for r in live}
    if data.get('epochs') != epochs or any(
            fps.get(r) != live_fp.get(r) for r in (base, method)):
        return [f'{osp.relpath(path, ROOT)} holds another protocol or recipe '
                f'(epochs {data.get("epochs")}, or a changed config) than '
                'this run: no committed comparison to show. This single seed '
                'is not a result.']
    live_d = {r['row']: r for r in live}
    machines = sorted({r['machine']['cpu'] for r in res if 'machine' in r})
    lines = []
    for key, name in KEYS:
        d = paired(res, method, base, key)
        if d is None:
            return [f'{osp.relpath(path, ROOT)} has no seed with both '
                    f'{method} and {base}.']
        diff = live_d[method][key] - live_d[base][key]
        lo, hi = min(d['diffs']), max(d['diffs'])
        where = 'inside' if lo <= diff <= hi else 'OUTSIDE'
        ci = (f"[{d['lo']:+.2f}, {d['hi']:+.2f}]" if d['lo'] is not None
              else '(no interval)')
        lines.append(
            f"{name:14} committed over {d['n']} seeds: {d['mean']:+.2f} "
            f"{ci} -> {d['verdict']}; per-seed differences "
            f"{lo:+.2f} .. {hi:+.2f}; this seed {diff:+.2f} ({where} that "
            'range)')
    lines.append(
        f"(95 % interval of the mean paired difference, paired t; "
        f"committed on {'; '.join(machines)}; "
        f'python benchmarks/bench_quality_digits.py --rows {method} '
        f"--epochs {epochs} --seeds {' '.join(map(str, data['seeds']))} "
        f'--val-interval {data.get("val_interval", 1)} '
        f'--out {osp.relpath(path, ROOT)})')
    verdicts = {paired(res, method, base, k)['verdict'] for k, _ in KEYS}
    if 'not distinguishable' in verdicts:
        lines.append(
            'Where the interval crosses 0 the two are not distinguishable: '
            'a single seed, on this machine or another, can land on either '
            'side of the base. Read the committed verdict, not this run.')
    else:
        lines.append('A single seed can still fall anywhere in the per-seed '
                     'range; the verdict is the committed one.')
    return lines


def main():
    args = parse_args()
    os.chdir(ROOT)
    base, method = args.rows
    t0 = time.time()
    tasks = [(method, args.seed, args.epochs, args.work_dir,
              args.val_interval),
             (base, args.seed, args.epochs, args.work_dir,
              args.val_interval)]
    with ProcessPoolExecutor(2, mp_context=mp.get_context('spawn'),
                             max_tasks_per_child=1) as pool:
        futures = [pool.submit(_run, t) for t in tasks]
        raw = _run((('raw pixels', base), args.seed, args.epochs,
                    args.work_dir))
        floor = _run((('random init', base), args.seed, args.epochs,
                      args.work_dir))
        res = {f.result()['row']: f.result() for f in futures}
    m, b = res[method], res[base]
    print('\n' + '=' * 86)
    print(f'Embedded digits, {args.epochs} epochs, seed {args.seed} (one '
          'seed). Test split (1,000 digits), bank = the 4,000 training '
          'digits.')
    print('kNN: weighted, k=200, sigma=0.07; few-label: 10 labelled digits '
          'per class, 5 draws; linear: L-BFGS probe.')
    print(f"{'':34}{'kNN top-1':>11}{'few-label':>11}{'linear':>9}"
          f"{'train s':>9}")
    rows = [(f'{method}', m), (f'{base} (its base)', b),
            (f'random init (shared {base} start)', floor),
            ('raw pixels', raw)]
    for name, r in rows:
        secs = f"{r['seconds']:.0f}" if 'val_curve' in r else '-'
        print(f"{name:34}{r['knn_top1']:>10.2f}%{r['few_knn_top1']:>10.2f}%"
              f"{r['linear_top1']:>8.2f}%{secs:>9}")
    print('=' * 86)
    for name, r in ((method, m), (base, b)):
        print(f'{name}: validation kNN top-1 at epochs 0, '
              f'{args.val_interval}, ...: '
              + ' '.join(f'{v:.1f}' for v in r['val_curve']))
    print(f"both started from the same weights: first validation points "
          f"{m['val_curve'][0]:.2f} / {b['val_curve'][0]:.2f}")
    print(f'\n{method} - {base}, this seed against the committed seeds:')
    for line in committed_lines(args.committed, base, method, args.epochs,
                                [m, b]):
        print('  ' + line)
    path = osp.join(args.work_dir, 'demo_curves.png')
    _plot(path, [(method, dict(curve=m['val_curve'])),
                 (base, dict(curve=b['val_curve']))],
          interval=args.val_interval)
    print(f'curves: {path}')
    print(f'machine: {m["machine"]["cpu"]}, torch {m["machine"]["torch"]}')
    print(f'demo finished in {(time.time() - t0) / 60:.1f} min')


def _plot(path, rows, interval=1):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, r in rows:
        ax.plot([i * interval for i in range(len(r['curve']))], r['curve'],
                marker='o', label=name)
    ax.set_xlabel('epoch (0 = the shared initialisation)')
    ax.set_ylabel('validation kNN top-1 (%)')
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    os.makedirs(osp.dirname(path), exist_ok=True)
    fig.savefig(path, dpi=100)


if __name__ == '__main__':
    main()
