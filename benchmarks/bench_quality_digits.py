"""Quality on real data: every method against its base algorithm on the
embedded digits, with the trivial baselines as rows of the same table.

For each row and seed: pre-train the row's digits recipe (same backbone,
32 px images, batch 64, augmentation and budget as its base) for
``--epochs`` epochs, recording the validation kNN top-1 (500 held-out
training digits against the other 3,500) before training and after every
epoch (the curve), and the mechanism diagnostics the run logs. Then, once,
on the TEST split (1,000 digits; bank = the 4,000 training digits):

* weighted kNN top-1 (k=200, sigma=0.07), full bank;
* few-label kNN top-1: a bank of 10 labelled training digits per class,
  mean over 5 draws (the same draws for every row);
* linear probe top-1 (full-batch L-BFGS on frozen pooled features).

Trivial rows: ``random init`` (the MoCo v2 network after ``init_weights``
with the seed) and ``raw pixels`` (the 32x32x3 images as vectors); the
canvas-digits rows have their own two. Nothing is chosen on the test split.

Schedule-tied knobs are rescaled from the recipes' 20-epoch budget to
``--epochs`` in proportion (``scale_schedule``); the table says which.

    python benchmarks/bench_quality_digits.py --epochs 6 --seeds 0 1 2 --jobs 2
    python benchmarks/bench_quality_digits.py --rows mocov2 interclr --seeds 3 --merge
    python benchmarks/bench_quality_digits.py --report
    python benchmarks/bench_quality_digits.py --matrix --seeds 0 1 2

``--matrix``: the composition matrix (docs/composition.md), every branch on
every framework plus the stack, each cell paired with its framework alone;
framework rows already in quality_digits.json for the same seed, budget and
recipe fingerprint are reused, not retrained. Writes
composition_digits.{json,csv} and composition_digits_heatmap.png.

Writes benchmarks/results/quality_digits.{json,csv} and
quality_digits_curves.png. ``--merge`` keeps the other rows / seeds of the
JSON and refuses results of a different recipe or budget.
"""
import argparse
import csv
import json
import multiprocessing as mp
import os
import os.path as osp
import statistics
import sys
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..'))
RESULTS = osp.join(ROOT, 'benchmarks', 'results')
JSON = osp.join(RESULTS, 'quality_digits.json')
BUDGET_EPOCHS = 20  # the digits configs' own budget
FLOOR, RAW = 'random init', 'raw pixels'
FLOOR_C, RAW_C = 'random init (canvas)', 'raw pixels (canvas)'

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from digits_rows import (BASE, CANVAS_ROWS, CONFIGS, MATRIX,  # noqa: E402
                         MATRIX_BASE, MATRIX_SAME_AS)

ROWS = list(CONFIGS)
MATRIX_JSON = osp.join(RESULTS, 'composition_digits.json')
FRAMEWORKS = ('mocov2', 'simclr', 'byol', 'simsiam')
BRANCHES = ('interimage', 'group', 'mixture')
# trivial row -> the recipe whose data / network it uses
TRIVIAL = {FLOOR: 'mocov2', RAW: 'mocov2', FLOOR_C: 'simclr-canvas',
           RAW_C: 'simclr-canvas'}
BASES = ('mocov2', 'simclr', 'byol', 'simsiam', 'npid')


def run_one(task):
    """One (row, seed) task in a worker process with ``threads`` intra-op
    threads; failures are reported, not raised."""
    row, seed, epochs, work_root, threads = task
    os.environ['OMP_NUM_THREADS'] = str(threads)
    try:
        import torch
        torch.set_num_threads(threads)
        sys.path.insert(0, ROOT)
        os.chdir(ROOT)
        import mmssl_ext  # noqa: F401
        from digits_rows import (curve_of, diagnostics_of,
                                 evaluate_features, prepare,
                                 raw_pixel_features, recipe_fingerprint,
                                 test_features)
        from mmengine.runner import Runner
        recipe = TRIVIAL.get(row, row)
        cfg, moved = prepare(recipe, seed, epochs, work_root,
                             budget_epochs=BUDGET_EPOCHS,
                             curve=row not in TRIVIAL)
        out = dict(row=row, seed=seed, epochs=epochs,
                   fingerprint=recipe_fingerprint(cfg), scaled=moved)
        t0 = time.time()
        if row in (RAW, RAW_C):
            feats = raw_pixel_features(cfg)
        else:
            runner = Runner.from_cfg(cfg)
            if row in (FLOOR, FLOOR_C):
                runner._init_model_weights()
            else:
                runner.train()
                out['val_curve'] = curve_of(runner)
                out['diagnostics'] = diagnostics_of(runner)
                lam = runner.message_hub.log_scalars.get('train/bsim_lambda')
                if lam is not None:
                    vals = [float(v) for v in lam.data[0]]
                    out['diagnostics']['bsim_lambda_mean'] = statistics.mean(
                        vals)
                    out['diagnostics']['bsim_lambda_sd'] = statistics.pstdev(
                        vals)
            feats = test_features(runner, cfg)
        out['seconds'] = time.time() - t0
        out.update(evaluate_features(*feats))
        return out
    except Exception as e:  # noqa: BLE001 - reported in the table
        traceback.print_exc()
        return dict(row=row, seed=seed, epochs=epochs,
                    error=f'{type(e).__name__}: {e}')


def _check_merge(old, epochs, path):
    """Refuse to merge results of a different budget or recipe."""
    if old.get('epochs') != epochs:
        raise SystemExit(
            f'--merge: {path} holds {old.get("epochs")}-epoch results, this '
            f'run is {epochs} epochs; use the same --epochs or no --merge')


def _save(results, failed, args, t0, wall_before=0.0):
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(dict(matrix=args.matrix, epochs=args.epochs,
                       seeds=sorted({r['seed'] for r in results}),
                       jobs=args.jobs, threads=args.threads,
                       wall_seconds=wall_before + time.time() - t0,
                       results=results, failed=failed), f, indent=1)


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--rows', nargs='+', default=None,
                   help='default: every method row (with --matrix: every '
                   'matrix cell)')
    p.add_argument('--matrix', action='store_true',
                   help='the composition matrix instead of the method rows')
    p.add_argument('--bases-from', default=JSON,
                   help='with --matrix: results JSON whose framework rows '
                   '(same seed, budget and recipe) are reused')
    p.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    p.add_argument('--epochs', type=int, default=6)
    p.add_argument('--jobs', type=int, default=2,
                   help='runs in parallel (worker processes)')
    p.add_argument('--threads', type=int, default=1,
                   help='intra-op threads per worker')
    p.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs',
                                                  'bench_quality'))
    p.add_argument('--merge', action='store_true',
                   help='keep the results of other rows / seeds already in '
                   'the JSON (same recipe and budget only)')
    p.add_argument('--report', action='store_true',
                   help='only print the table of the existing results JSON')
    p.add_argument('--out', default=None,
                   help='results JSON (CSV and PNG are written beside it); '
                   'default quality_digits.json, with --matrix '
                   'composition_digits.json')
    args = p.parse_args()
    args.out = args.out or (MATRIX_JSON if args.matrix else JSON)
    if args.report:
        return report(args.out)
    known = list(MATRIX) + list(FRAMEWORKS) if args.matrix else ROWS
    args.rows = args.rows or (list(MATRIX) if args.matrix else ROWS)
    unknown = [r for r in args.rows if r not in known]
    if unknown:
        raise SystemExit(f'unknown rows {unknown}; choose from {known}')
    if args.matrix:
        return run_matrix(args)
    # seed-major order, so a partial run holds complete seeds; trivial rows
    # once per seed (raw pixels once: they have no seed)
    tasks = []
    canvas = any(r in CANVAS_ROWS for r in args.rows)
    plain = any(r not in CANVAS_ROWS for r in args.rows)
    for i, seed in enumerate(args.seeds):
        triv = ([FLOOR] if plain else []) + ([FLOOR_C] if canvas else [])
        if i == 0:
            triv += ([RAW] if plain else []) + ([RAW_C] if canvas else [])
        tasks += [(r, seed) for r in triv] + [(r, seed) for r in args.rows]
    results, failed, wall = [], [], 0.0
    if args.merge and osp.exists(args.out):
        with open(args.out) as f:
            old = json.load(f)
        _check_merge(old, args.epochs, args.out)
        have = {(r['row'], r['seed']) for r in old['results']}
        tasks = [t for t in tasks if t[0] not in TRIVIAL or t not in have
                 and not (t[0] in (RAW, RAW_C) and any(
                     h[0] == t[0] for h in have))]
        redo = set(tasks)
        results = [r for r in old['results']
                   if (r['row'], r['seed']) not in redo]
        wall = old.get('wall_seconds', 0.0)
    _run_tasks(tasks, results, failed, args, wall)


def _ms(vals):
    m = statistics.mean(vals)
    return m, (statistics.stdev(vals) if len(vals) > 1 else 0.0)


def paired(results, row, base, key):
    """Mean and sd over seeds of ``row - base`` (same seed), and the number
    of seeds where the row is at or above its base."""
    a = {r['seed']: r[key] for r in results if r['row'] == row}
    b = {r['seed']: r[key] for r in results if r['row'] == base}
    common = sorted(set(a) & set(b))
    if not common:
        return None
    d = [a[s] - b[s] for s in common]
    m, s = _ms(d)
    return m, s, sum(x >= 0 for x in d), len(d)


DIAG_KEYS = ('pseudo_nmi', 'pseudo_purity', 'change_ratio', 'neg_widened',
             'neighbour_precision', 'positive_precision', 'group_purity',
             'ccrop_box_area', 'ccrop_box_iou_prev', 'ccrop_object_iou',
             'ccrop_object_cover', 'bsim_lambda_mean', 'bsim_lambda_sd')


def report(json_path):
    """Print the Markdown tables of a results JSON and write the CSV / PNG
    next to it (also ``--report`` alone, without training)."""
    with open(json_path) as f:
        data = json.load(f)
    results = data['results']
    matrix = data.get('matrix', False)
    if matrix:
        order = list(FRAMEWORKS) + list(MATRIX)
        bases = MATRIX_BASE
    else:
        order = [FLOOR, RAW] + [r for r in ROWS if r not in CANVAS_ROWS] + [
            FLOOR_C, RAW_C] + list(CANVAS_ROWS)
        bases = BASE
    results.sort(key=lambda r: (order.index(r['row']), r['seed']))
    seeds = sorted({r['seed'] for r in results})
    print(f"\nDigits (4,000 train / 1,000 test), {data['epochs']} epochs of "
          f'batch 64 per row, seeds {seeds}, mean +- sd over seeds; '
          f"{data.get('wall_seconds', 0) / 60:.0f} min wall with "
          f"{data.get('jobs')} jobs x {data.get('threads')} thread(s)")
    moved = sorted({m for r in results for m in r.get('scaled', [])})
    print('schedule knobs scaled from the 20-epoch recipes: '
          + ('; '.join(moved) or 'none'))
    if data.get('failed'):
        print('FAILED: ' + '; '.join(f"{r['row']} seed {r['seed']}: "
                                      f"{r['error']}" for r in
                                      data['failed']))
    rows = [r for r in order if any(x['row'] == r for x in results)]
    table = []
    print('\n| row | base | kNN top-1 | vs base (paired) | few-label kNN | '
          'vs base (paired) | linear top-1 | train s |')
    print('|---|---|---|---|---|---|---|---|')
    for row in rows:
        rs = [r for r in results if r['row'] == row]
        base = bases.get(row, '')
        cells = dict(row=row, base=base)
        for key in ('knn_top1', 'few_knn_top1', 'linear_top1'):
            cells[key] = _ms([r[key] for r in rs])
            d = paired(results, row, base, key) if base else None
            cells[key + '_delta'] = d
        cells['seconds'] = statistics.mean(r['seconds'] for r in rs)
        table.append(cells)

        def fmt(key):
            m, s = cells[key]
            return f'{m:.2f} +- {s:.2f}' if len(rs) > 1 else f'{m:.2f}'

        def fmt_d(key):
            d = cells[key + '_delta']
            if d is None:
                return '-'
            m, s, wins, n = d
            return f'{m:+.2f} +- {s:.2f} ({wins}/{n})'

        print(f"| {row} | {base or '-'} | {fmt('knn_top1')} | "
              f"{fmt_d('knn_top1')} | {fmt('few_knn_top1')} | "
              f"{fmt_d('few_knn_top1')} | {fmt('linear_top1')} | "
              f"{cells['seconds']:.0f} |")
    print('\n"vs base": mean +- sd over seeds of (row - base) on the same '
          'seed, and (seeds at or above the base / seeds).')
    # diagnostics at the end of training
    diag_rows = []
    for row in rows:
        ds = [r.get('diagnostics', {}) for r in results if r['row'] == row]
        keys = [k for k in DIAG_KEYS if any(k in d for d in ds)]
        if keys:
            vals = ', '.join(
                f"{k} {statistics.mean(d[k] for d in ds if k in d):.3f}"
                for k in keys)
            diag_rows.append((row, vals))
    if diag_rows:
        print('\nMechanism diagnostics at the end of training (mean over '
              'seeds; true labels used for monitoring only):\n')
        print('| row | diagnostics |')
        print('|---|---|')
        for row, vals in diag_rows:
            print(f'| {row} | {vals} |')
    base = osp.splitext(json_path)[0]
    with open(base + '.csv', 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['row', 'base', 'knn', 'knn_sd', 'knn_delta', 'few',
                    'few_sd', 'few_delta', 'linear', 'linear_sd',
                    'seconds'])
        for t in table:
            w.writerow([
                t['row'], t['base'], *t['knn_top1'],
                (t['knn_top1_delta'] or [''])[0], *t['few_knn_top1'],
                (t['few_knn_top1_delta'] or [''])[0], *t['linear_top1'],
                t['seconds']
            ])
    if matrix:
        same = sorted({(r['row'], r['same_run_as']) for r in results
                       if r.get('same_run_as')})
        if same:
            print('\nSame runs as rows of the quality benchmark (the same '
                  'model, weights and losses; digits_rows.MATRIX_SAME_AS): '
                  + ', '.join(f'{a} = {b}' for a, b in same))
        plot_heatmap(table, base + '_heatmap.png', data['epochs'], seeds)
        times = osp.join(RESULTS, 'composition_overhead.json')
        if osp.exists(times):
            with open(times) as f:
                t = {r['method']: r for r in json.load(f)['table']}
            print('\nTime per iteration over the framework alone '
                  f'(benchmarks/bench_overhead.py --matrix):\n')
            print('| cell | step ratio | data+step ratio |')
            print('|---|---|---|')
            for row in MATRIX:
                if row in t:
                    print(f"| {row} | {t[row]['step_ratio']:.2f} | "
                          f"{t[row]['total_ratio']:.2f} |")
    else:
        plot_curves(results, rows, base + '_curves.png', data['epochs'])


def run_matrix(args):
    """The composition matrix: the cells of ``args.rows`` for every seed,
    and each cell's framework alone, reused from ``--bases-from`` where the
    same seed, budget and recipe were run there."""
    sys.path.insert(0, ROOT)
    import mmssl_ext  # noqa: F401
    from digits_rows import prepare, recipe_fingerprint
    frameworks = [f for f in FRAMEWORKS
                  if any(MATRIX_BASE.get(r, r) == f for r in args.rows)]
    reuse = []
    if osp.exists(args.bases_from):
        with open(args.bases_from) as f:
            old = json.load(f)
        if old.get('epochs') == args.epochs:
            reuse = old['results']
    results, failed, wall = [], [], 0.0
    if args.merge and osp.exists(args.out):
        with open(args.out) as f:
            prev = json.load(f)
        _check_merge(prev, args.epochs, args.out)
        results = prev['results']
        wall = prev.get('wall_seconds', 0.0)
    def reused(row, seed, same_as=None):
        """The result of ``same_as`` (default ``row``) in --bases-from for
        this seed, if its recipe is today's, relabelled as ``row``."""
        src = same_as or row
        fp = recipe_fingerprint(
            prepare(src, seed, args.epochs, args.work_dir,
                    budget_epochs=BUDGET_EPOCHS)[0])
        hit = [r for r in reuse if r['row'] == src and r['seed'] == seed
               and r['fingerprint'] == fp]
        if not hit:
            return None
        out = dict(hit[0], row=row,
                   reused_from=osp.relpath(args.bases_from, ROOT))
        if same_as:
            out.update(same_run_as=same_as, fingerprint=f'{same_as}:{fp}')
        return out

    tasks = []
    for seed in args.seeds:
        cells = frameworks + [r for r in args.rows if r not in FRAMEWORKS]
        for row in cells:
            if row in FRAMEWORKS or row in MATRIX_SAME_AS:
                if any(r['row'] == row and r['seed'] == seed
                       for r in results):
                    continue
                hit = reused(row, seed, MATRIX_SAME_AS.get(row))
                if hit:
                    results.append(hit)
                    continue
            tasks.append((row, seed))
    redo = set(tasks)
    results = [r for r in results if (r['row'], r['seed']) not in redo]
    print(f'{len(tasks)} runs: ' + ', '.join(f'{r} s{s}' for r, s in tasks),
          flush=True)
    _run_tasks(tasks, results, failed, args, wall)


def _run_tasks(tasks, results, failed, args, wall):
    t0 = time.time()
    fps = {}
    for r in results:
        fps.setdefault(r['row'], r['fingerprint'])
    with ProcessPoolExecutor(args.jobs, mp_context=mp.get_context('spawn'),
                             max_tasks_per_child=1) as pool:
        futures = [
            pool.submit(run_one, (row, seed, args.epochs, args.work_dir,
                                  args.threads)) for row, seed in tasks
        ]
        for fut in as_completed(futures):
            r = fut.result()
            tag = f"[{time.time() - t0:7.0f}s] {r['row']} seed {r['seed']}"
            if 'error' in r:
                print(f"{tag}: FAILED {r['error']}", flush=True)
                failed.append(r)
            elif fps.setdefault(r['row'], r['fingerprint']) != \
                    r['fingerprint']:
                msg = (f"recipe of row {r['row']!r} changed (fingerprint "
                       f"{r['fingerprint']} vs {fps[r['row']]} in the "
                       'results): not merged; rerun all its seeds without '
                       '--merge')
                print(f'{tag}: REFUSED {msg}', flush=True)
                failed.append(dict(r, error=msg))
            else:
                curve = ' '.join(f'{v:.1f}' for v in r.get('val_curve', []))
                print(f"{tag}: kNN {r['knn_top1']:.2f} few "
                      f"{r['few_knn_top1']:.2f} linear "
                      f"{r['linear_top1']:.2f} ({r['seconds']:.0f}s) "
                      f'val curve {curve}', flush=True)
                results.append(r)
            _save(results, failed, args, t0, wall)
    report(args.out)


def plot_heatmap(table, path, epochs, seeds):
    """Frameworks x branches: mean paired difference to the framework
    alone (kNN and few-label kNN), annotated with seeds at or above it."""
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        return
    cells = {t['row']: t for t in table}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, key, title in zip(axes, ('knn_top1', 'few_knn_top1'),
                              ('kNN top-1', 'few-label kNN top-1')):
        grid = [[float('nan')] * len(BRANCHES) for _ in FRAMEWORKS]
        for i, fw in enumerate(FRAMEWORKS):
            for j, br in enumerate(BRANCHES):
                d = cells.get(f'{fw}-{br}', {}).get(key + '_delta')
                if d:
                    grid[i][j] = d[0]
                    ax.text(j, i, f'{d[0]:+.1f}\n({d[2]}/{d[3]})',
                            ha='center', va='center', fontsize=9)
        lim = max([abs(v) for row in grid for v in row if v == v] + [1])
        im = ax.imshow(grid, cmap='RdBu', vmin=-lim, vmax=lim)
        ax.set_xticks(range(len(BRANCHES)), BRANCHES)
        ax.set_yticks(range(len(FRAMEWORKS)), FRAMEWORKS)
        ax.set_title(f'{title}: cell - framework (points)')
        fig.colorbar(im, ax=ax, shrink=0.8)
    fig.suptitle(f'digits, {epochs} epochs, seeds {seeds}; '
                 '(seeds at or above the framework / seeds)', fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def plot_curves(results, rows, path, epochs):
    """Validation kNN top-1 against epochs (mean over seeds), one line per
    trained row; epoch 0 is the initialised network."""
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        return
    trained = [r for r in rows if r not in TRIVIAL]
    groups = [[r for r in trained if r not in CANVAS_ROWS],
              [r for r in trained if r in CANVAS_ROWS]]
    groups = [g for g in groups if g]
    fig, axes = plt.subplots(1, len(groups), figsize=(7 * len(groups), 5),
                             squeeze=False)
    cmap = plt.get_cmap('tab20')
    for ax, group in zip(axes[0], groups):
        for i, row in enumerate(group):
            curves = [r['val_curve'] for r in results
                      if r['row'] == row and r.get('val_curve')]
            if not curves:
                continue
            n = min(len(c) for c in curves)
            mean = [statistics.mean(c[e] for c in curves) for e in range(n)]
            ls = '--' if row in BASE.values() and row not in BASE else '-'
            ax.plot(range(n), mean, ls, color=cmap(i % 20), label=row,
                    marker='o', ms=3)
        ax.set_xlabel('epoch (0 = initialised network)')
        ax.set_ylabel('validation kNN top-1 (%)')
        ax.set_title('canvas digits' if group[0] in CANVAS_ROWS else
                     f'digits, {epochs} epochs')
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


if __name__ == '__main__':
    main()
