"""Recipe choices on the digits VALIDATION split (never the test split).

Each variant is a digits row plus ``--cfg-options``-style overrides; every
(variant, seed) trains for ``--epochs`` epochs and records the validation
kNN top-1 (500 held-out training digits against the other 3,500) after
every epoch, the training loss and the run's mechanism scalars. Variants
are given in a JSON/py-literal file or on the command line:

    python benchmarks/search_digits_recipes.py --epochs 10 --seeds 0 \\
        --variant mocov2:m0.99 mocov2 model.momentum=0.01 \\
        --variant mocov2:q256 mocov2 model.queue_len=256

Results accumulate in ``benchmarks/results/digits_recipe_search.json``
(a variant re-run replaces its old result); ``--report`` prints the table.
The variants we ran and what they decided are listed in docs/digits.md.
"""
import argparse
import ast
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
RESULTS = osp.join(ROOT, 'benchmarks', 'results',
                   'digits_recipe_search.json')
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))


def _value(s):
    try:
        return ast.literal_eval(s)
    except (ValueError, SyntaxError):
        return s


def run_variant(task):
    name, row, overrides, seed, epochs, work_root, threads = task
    os.environ['OMP_NUM_THREADS'] = str(threads)
    try:
        import torch
        torch.set_num_threads(threads)
        sys.path.insert(0, ROOT)
        os.chdir(ROOT)
        import mmssl_ext  # noqa: F401
        from digits_rows import (curve_of, diagnostics_of, prepare,
                                 recipe_fingerprint)
        from mmengine.runner import Runner
        cfg, moved = prepare(row, seed, epochs, osp.join(work_root, name),
                             overrides=overrides)
        fp = recipe_fingerprint(cfg)
        runner = Runner.from_cfg(cfg)
        t0 = time.time()
        runner.train()
        loss = runner.message_hub.get_scalar('train/loss')
        return dict(name=name, row=row, overrides=overrides, seed=seed,
                    epochs=epochs, fingerprint=fp, scaled=moved,
                    val_curve=curve_of(runner),
                    final_loss=float(loss.mean(20)),
                    diagnostics=diagnostics_of(runner),
                    seconds=time.time() - t0)
    except Exception as e:  # noqa: BLE001 - reported in the table
        traceback.print_exc()
        return dict(name=name, row=row, overrides=overrides, seed=seed,
                    epochs=epochs, error=f'{type(e).__name__}: {e}')


def load_results():
    if osp.exists(RESULTS):
        with open(RESULTS) as f:
            return json.load(f)
    return dict(results=[])


def report(data, names=None):
    by = {}
    for r in data['results']:
        if names and r['name'] not in names:
            continue
        by.setdefault(r['name'], []).append(r)
    print('\n| variant | row | overrides | epochs | seeds | val kNN top-1 '
          '(last) | best epoch value | final loss | s/run |')
    print('|---|---|---|---|---|---|---|---|---|')
    for name, rs in by.items():
        ok = [r for r in rs if 'error' not in r]
        if not ok:
            print(f"| {name} | {rs[0]['row']} | {rs[0]['overrides']} | "
                  f"{rs[0]['epochs']} | - | FAILED: {rs[0]['error'][:80]} "
                  '| | | |')
            continue
        last = [r['val_curve'][-1] for r in ok]
        best = [max(r['val_curve'][1:]) for r in ok]
        sd = f' +- {statistics.stdev(last):.1f}' if len(last) > 1 else ''
        ov = ' '.join(f'{k}={v}' for k, v in ok[0]['overrides'].items())
        print(f"| {name} | {ok[0]['row']} | {ov or '-'} | {ok[0]['epochs']}"
              f" | {len(ok)} | {statistics.mean(last):.1f}{sd} | "
              f"{statistics.mean(best):.1f} | "
              f"{statistics.mean(r['final_loss'] for r in ok):.3f} | "
              f"{statistics.mean(r['seconds'] for r in ok):.0f} |")


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--variant', nargs='+', action='append', default=[],
                   metavar='NAME ROW [KEY=VALUE ...]')
    p.add_argument('--seeds', nargs='+', type=int, default=[0])
    p.add_argument('--epochs', type=int, default=10)
    p.add_argument('--jobs', type=int, default=2)
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--work-dir',
                   default=osp.join(ROOT, 'work_dirs', 'recipe_search'))
    p.add_argument('--report', nargs='*', default=None,
                   help='print the table (of the named variants)')
    args = p.parse_args()
    if args.report is not None:
        return report(load_results(), args.report)
    from digits_rows import CONFIGS
    tasks = []
    for v in args.variant:
        if len(v) < 2 or v[1] not in CONFIGS:
            raise SystemExit(f'--variant {v}: expected NAME ROW [K=V ...] '
                             f'with ROW one of {sorted(CONFIGS)}')
        ov = {}
        for kv in v[2:]:
            if '=' not in kv:
                raise SystemExit(f'--variant {v[0]}: {kv!r} is not KEY=VALUE')
            k, val = kv.split('=', 1)
            ov[k] = _value(val)
        tasks += [(v[0], v[1], ov, s, args.epochs, args.work_dir,
                   args.threads) for s in args.seeds]
    t0 = time.time()
    with ProcessPoolExecutor(args.jobs, mp_context=mp.get_context('spawn'),
                             max_tasks_per_child=1) as pool:
        futures = [pool.submit(run_variant, t) for t in tasks]
        for fut in as_completed(futures):
            r = fut.result()
            data = load_results()
            data['results'] = [
                o for o in data['results']
                if not (o['name'] == r['name'] and o['seed'] == r['seed'])
            ] + [r]
            with open(RESULTS, 'w') as f:
                json.dump(data, f, indent=1)
            msg = (r['error'] if 'error' in r else
                   'val curve ' + ' '.join(f'{v:.1f}'
                                           for v in r['val_curve']))
            print(f"[{time.time() - t0:6.0f}s] {r['name']} s{r['seed']}: "
                  f'{msg}', flush=True)
    report(load_results(), [v[0] for v in args.variant])


if __name__ == '__main__':
    main()
