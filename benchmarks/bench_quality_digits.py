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
import logging
import math
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
                         MATRIX_BASE, MATRIX_SAME_AS, base_of,
                         machine_key)

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
    threads; failures are reported, not raised. Every trained row starts
    from its pair's initial state (``digits_rows.paired_init``).

    ``task``: ``(row, seed, epochs, work_root, threads, val_interval)``,
    optionally followed by the recipe of a trivial row (default
    ``TRIVIAL[row]``) and ``progress`` (log every 20 iterations, as the
    demo does)."""
    row, seed, epochs, work_root, threads, val_interval = task[:6]
    recipe = task[6] if len(task) > 6 and task[6] else TRIVIAL.get(row, row)
    progress = len(task) > 7 and task[7]
    os.environ['OMP_NUM_THREADS'] = str(threads)
    try:
        import torch
        torch.set_num_threads(threads)
        sys.path.insert(0, ROOT)
        os.chdir(ROOT)
        import mmssl_ext  # noqa: F401
        from mmssl_ext.utils.quiet import silence_known_warnings
        silence_known_warnings()  # `make demo`'s runs and the benchmark's
        from digits_rows import (base_of, curve_of, diagnostics_of,
                                 evaluate_features, machine_info,
                                 paired_init, prepare, raw_pixel_features,
                                 recipe_fingerprint, test_features)
        from mmengine.runner import Runner
        cfg, moved = prepare(recipe, seed, epochs, work_root,
                             budget_epochs=BUDGET_EPOCHS,
                             curve=row not in TRIVIAL,
                             val_interval=val_interval)
        out = dict(row=row, seed=seed, epochs=epochs,
                   fingerprint=recipe_fingerprint(cfg), scaled=moved,
                   machine=machine_info())
        t0 = time.time()
        if row in (RAW, RAW_C):
            feats = raw_pixel_features(cfg)
        else:
            base = base_of(recipe)
            bcfg = prepare(base, seed, epochs, work_root,
                           budget_epochs=BUDGET_EPOCHS)[0] if base else None
            out['shared_keys'] = paired_init(
                cfg, recipe, seed,
                osp.join(work_root, 'init', row.replace(' ', '_')), bcfg)
            if progress:
                cfg.default_hooks.logger = dict(type='LoggerHook',
                                                interval=20)
            runner = Runner.from_cfg(cfg)
            silence_known_warnings(runner.logger)
            if progress:  # progress lines only, not the runner's listings
                for h in runner.logger.handlers:
                    h.setLevel(logging.INFO)
                runner.logger.setLevel(logging.INFO)
            if row in (FLOOR, FLOOR_C):
                runner._init_model_weights()
                runner.load_checkpoint(cfg.load_from)
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
                       val_interval=getattr(args, 'val_interval', 1),
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
    p.add_argument('--val-interval', type=int, default=1,
                   help='epochs between validation points of the curve '
                   '(epoch 0, before training, is always measured)')
    p.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs',
                                                  'bench_quality'))
    p.add_argument('--merge', action='store_true',
                   help='keep the results of other rows / seeds already in '
                   'the JSON (same recipe and budget only)')
    p.add_argument('--redo', action='store_true',
                   help='with --merge: rerun rows / seeds already in the '
                   'JSON (default: skip them, so an interrupted run '
                   'continues where it stopped)')
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
    # a method row is measured with its base: add the bases not named
    args.rows += [b for b in dict.fromkeys(
        BASE[r] for r in args.rows if r in BASE) if b not in args.rows]
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
        for r in old['results']:
            why = pair_problem(old['results'], r)
            if why:
                raise SystemExit(f'--merge: {args.out}: {why}')
        have = {(r['row'], r['seed']) for r in old['results']}
        tasks = [t for t in tasks if t not in have or (
                     args.redo and t[0] not in TRIVIAL)]
        tasks = [t for t in tasks if not (t[0] in (RAW, RAW_C) and any(
                     h[0] == t[0] for h in have))]
        redo = set(tasks)
        results = [r for r in old['results']
                   if (r['row'], r['seed']) not in redo]
        wall = old.get('wall_seconds', 0.0)
    _run_tasks(tasks, results, failed, args, wall)


def _ms(vals):
    m = statistics.mean(vals)
    return m, (statistics.stdev(vals) if len(vals) > 1 else 0.0)


def paired(results, row, base, key, level=0.95):
    """Paired comparison of ``row`` with ``base`` over the seeds both ran:
    the differences ``row - base`` on the same seed, their mean, the
    two-sided ``level`` confidence interval of the mean by the paired t
    distribution (n - 1 degrees of freedom), the verdict and the number of
    seeds at or above the base. None when no seed has both."""
    a = {r['seed']: r[key] for r in results if r['row'] == row}
    b = {r['seed']: r[key] for r in results if r['row'] == base}
    common = sorted(set(a) & set(b))
    if not common:
        return None
    d = [a[s] - b[s] for s in common]
    n = len(d)
    m = statistics.mean(d)
    out = dict(mean=m, sd=0.0, lo=None, hi=None, n=n, diffs=d,
               wins=sum(x >= 0 for x in d), verdict='one seed: no verdict')
    if n > 1:
        from scipy.stats import t
        sd = statistics.stdev(d)
        half = t.ppf(0.5 + level / 2, n - 1) * sd / math.sqrt(n)
        lo, hi = m - half, m + half
        out.update(sd=sd, lo=lo, hi=hi,
                   verdict='above' if lo > 0 else
                   'below' if hi < 0 else 'not distinguishable')
    return out


def starts_equal(results, row, base):
    """``(seeds where row and base have the same first validation point,
    seeds both ran)``, or None when neither records a curve."""
    a = {r['seed']: r['val_curve'][0] for r in results
         if r['row'] == row and r.get('val_curve')}
    b = {r['seed']: r['val_curve'][0] for r in results
         if r['row'] == base and r.get('val_curve')}
    common = set(a) & set(b)
    if not common:
        return None
    return sum(a[s] == b[s] for s in common), len(common)


def fmt_paired(d):
    """``+3.60 [+1.20, +6.00] above (5/5)``."""
    if d is None:
        return '-'
    ci = f" [{d['lo']:+.2f}, {d['hi']:+.2f}]" if d['lo'] is not None else ''
    return f"{d['mean']:+.2f}{ci} {d['verdict']} ({d['wins']}/{d['n']})"


def pair_problem(results, r):
    """Why result ``r`` cannot stand beside ``results`` (None: it can): a
    result of its pair (its base, or a method row on it, same seed) that
    did not start from the same weights (different first validation
    point) or ran on another machine."""
    for x in results:
        if x['seed'] != r['seed'] or not (
                x['row'] == base_of(r['row'])
                or base_of(x['row']) == r['row']):
            continue
        m, b = (x, r) if x['row'] != base_of(r['row']) else (r, x)
        m0, b0 = m.get('val_curve', [])[:1], b.get('val_curve', [])[:1]
        if m0 and b0 and m0 != b0:
            return (f"row {m['row']!r} seed {m['seed']} did not start from "
                    f"the weights of its base {b['row']!r} (first validation "
                    f'point {m0[0]:.2f} vs {b0[0]:.2f})')
        if 'machine' in r and 'machine' in x and \
                machine_key(r['machine']) != machine_key(x['machine']):
            return (f"row {r['row']!r} seed {r['seed']} ran on "
                    f"{machine_key(r['machine'])!r}, its pair {x['row']!r} "
                    f"on {machine_key(x['machine'])!r}: rerun both rows of "
                    'this seed on one machine')
        if 'machine' not in x:
            return (f"row {x['row']!r} seed {x['seed']} records no machine: "
                    'rerun it')
    return None


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
    machines = sorted({machine_key(r['machine']) for r in results
                       if 'machine' in r})
    print('machine(s): ' + ('; '.join(machines) or 'not recorded'))
    table = []
    print('\n| row | base | kNN top-1 | vs base | few-label kNN | vs base | '
          'linear top-1 | vs base | same start | train s |')
    print('|---|---|---|---|---|---|---|---|---|---|')
    for row in rows:
        rs = [r for r in results if r['row'] == row]
        base = bases.get(row, '')
        cells = dict(row=row, base=base)
        for key in ('knn_top1', 'few_knn_top1', 'linear_top1'):
            cells[key] = _ms([r[key] for r in rs])
            d = paired(results, row, base, key) if base else None
            cells[key + '_delta'] = d
        cells['seconds'] = statistics.mean(r['seconds'] for r in rs)
        start = starts_equal(results, row, base) if base else None
        if start and start[0] < start[1]:  # not a paired result
            for key in ('knn_top1', 'few_knn_top1', 'linear_top1'):
                if cells[key + '_delta']:
                    cells[key + '_delta']['verdict'] = 'NOT PAIRED'
        table.append(cells)

        def fmt(key):
            m, s = cells[key]
            return f'{m:.2f} +- {s:.2f}' if len(rs) > 1 else f'{m:.2f}'

        first = f'{start[0]}/{start[1]}' if start else '-'
        print(f"| {row} | {base or '-'} | {fmt('knn_top1')} | "
              f"{fmt_paired(cells['knn_top1_delta'])} | "
              f"{fmt('few_knn_top1')} | "
              f"{fmt_paired(cells['few_knn_top1_delta'])} | "
              f"{fmt('linear_top1')} | "
              f"{fmt_paired(cells['linear_top1_delta'])} | {first} | "
              f"{cells['seconds']:.0f} |")
    print('\nValues: mean +- sd over seeds. "vs base": mean paired difference '
          '(row - base, same seed, same initial weights) with its 95 % '
          'confidence interval (paired t, n - 1 degrees of freedom), the '
          'verdict (above / below / not distinguishable: the interval '
          'crosses 0) and (seeds at or above the base / seeds). "same '
          'start": seeds whose first validation point (the initialised '
          'network) equals the base\'s; a pair that did not start equal is '
          'NOT PAIRED and gets no verdict.')
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
        w.writerow(['row', 'base', 'seeds'] + [
            f'{k}{x}' for k in ('knn', 'few', 'linear')
            for x in ('', '_sd', '_delta', '_lo', '_hi', '_verdict')
        ] + ['seconds'])
        for t in table:
            vals = []
            for key in ('knn_top1', 'few_knn_top1', 'linear_top1'):
                d = t[key + '_delta'] or {}
                vals += [*t[key], d.get('mean', ''), d.get('lo', ''),
                         d.get('hi', ''), d.get('verdict', '')]
            w.writerow([t['row'], t['base'], len(
                [r for r in results if r['row'] == t['row']])] + vals +
                [t['seconds']])
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
                                  args.threads, args.val_interval))
            for row, seed in tasks
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
            elif pair_problem(results, r):
                msg = pair_problem(results, r) + ': not merged'
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
                    grid[i][j] = d['mean']
                    ax.text(j, i, f"{d['mean']:+.1f}\n({d['wins']}/{d['n']})",
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
