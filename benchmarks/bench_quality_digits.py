"""Quality on real data: every method against its base algorithm on the
embedded digits, plus the random-init floor.

For each row and seed: pre-train with the row's digits config (same backbone,
32 px images, batch 64, augmentation as its base) for ``--epochs`` epochs,
then measure on the digits test split with the 4,000 training images as the
bank:
  * weighted kNN top-1 (k=200, sigma=0.07),
  * linear probe top-1: a linear classifier on frozen, pooled backbone
    features of the training split (full-batch L-BFGS on the
    cross-entropy, L2 1e-4, no augmentation) evaluated on the test split.
The random-init floor is the same network after ``init_weights`` (seed s).

Schedule-tied knobs are rescaled from the configs' 20-epoch digits budget to
``--epochs`` in proportion (``scale_schedule``): LR schedules, warm-up epochs,
InvP's ramp-up epoch, ContrastiveCrop's warm-up and box interval, InterCLR's
warm-up. The table says which knobs moved.

    python benchmarks/bench_quality_digits.py --epochs 2 --seeds 0 1 2 --jobs 2
    python benchmarks/bench_quality_digits.py --rows mocov2 interclr --seeds 0

Writes benchmarks/results/quality_digits.{json,csv,png}.
"""
import argparse
import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor, as_completed
import csv
import json
import os
import os.path as osp
import statistics
import sys
import time

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..'))
RESULTS = osp.join(ROOT, 'benchmarks', 'results')
BUDGET_EPOCHS = 20  # the digits configs' own budget
FLOOR = 'random init (floor)'

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from digits_rows import BASE, CONFIGS, load, quiet  # noqa: E402

ROWS = list(CONFIGS)


def linear_probe(train_x, train_y, test_x, test_y, num_classes=10):
    import torch
    import torch.nn.functional as F
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    tx, vx = (train_x - mean) / std, (test_x - mean) / std
    lin = torch.nn.Linear(tx.size(1), num_classes)
    opt = torch.optim.LBFGS(lin.parameters(), lr=1, max_iter=200,
                            line_search_fn='strong_wolfe')

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(lin(tx), train_y) + 1e-4 * lin.weight.pow(
            2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return (lin(vx).argmax(1) == test_y).float().mean().item() * 100


KNN_CFG = 'configs/_base_/datasets/digits_knn.py'


def _features(runner):
    """Pooled backbone features of the digits train (bank) and test splits,
    extracted once and shared by the kNN and the linear-probe columns. The
    splits and K / sigma come from ``configs/_base_/datasets/digits_knn.py``
    for every row (InvP's own val loop monitors its memory bank instead)."""
    from mmengine.config import Config
    from mmssl_ext.engine.runners.knn_loop import _labels_of
    from mmssl_ext.utils.extract import extract_features
    knn = Config.fromfile(osp.join(ROOT, KNN_CFG))
    bank_loader = runner.build_dataloader(knn.val_cfg.bank_dataloader)
    query_loader = runner.build_dataloader(knn.val_dataloader)
    bank = extract_features(runner.model, bank_loader, progress=False).cpu()
    query = extract_features(runner.model, query_loader,
                             progress=False).cpu()
    return (bank, _labels_of(bank_loader.dataset), query,
            _labels_of(query_loader.dataset), knn.val_cfg.k,
            knn.val_cfg.sigma)


def evaluate(runner):
    """kNN top-1 (the val loop's k and sigma) and linear-probe top-1."""
    from mmssl_ext.evaluation.functional import knn_classify
    bank, bank_y, query, query_y, k, sigma = _features(runner)
    scores = knn_classify(bank, bank_y, query, 10, k=min(k, bank.size(0)),
                          sigma=sigma)
    knn = (scores.argmax(1) == query_y).float().mean().item() * 100
    lin = linear_probe(bank, bank_y, query, query_y)
    return knn, lin


def run_one_safe(task):
    """:func:`run_one`, reporting a failed row instead of ending the pool."""
    import traceback
    try:
        return run_one(task)
    except Exception as e:  # noqa: BLE001 - reported in the table
        traceback.print_exc()
        return dict(row=task[0], seed=task[1], epochs=task[2],
                    error=f'{type(e).__name__}: {e}')


def run_one(task):
    """One (row, seed) task, run in a worker process with ``threads``
    intra-op threads. ``row == FLOOR`` evaluates the initialised network of
    the MoCo v2 config without training (the random-init floor)."""
    row, seed, epochs, work_root, threads = task
    os.environ['OMP_NUM_THREADS'] = str(threads)
    import torch
    torch.set_num_threads(threads)
    sys.path.insert(0, ROOT)
    os.chdir(ROOT)
    import mmssl_ext  # noqa: F401
    from mmengine.runner import Runner
    from mmssl_ext.utils.budget import scale_schedule

    cfg = load('mocov2' if row == FLOOR else row)
    moved = scale_schedule(cfg, epochs, BUDGET_EPOCHS)
    # the final evaluation below replaces the configs' own val epochs
    quiet(cfg, osp.join(work_root, f'{row}_s{seed}'), f'{row}_s{seed}',
          logger_interval=50)
    cfg.randomness = dict(seed=seed, deterministic=False)
    runner = Runner.from_cfg(cfg)
    t0 = time.time()
    if row == FLOOR:
        runner._init_model_weights()
        moved = []
    else:
        runner.train()
    seconds = time.time() - t0
    runner.model.eval()
    knn, lin = evaluate(runner)
    return dict(row=row, seed=seed, epochs=epochs, knn_top1=knn,
                linear_top1=lin, seconds=seconds, scaled=moved,
                iters=runner.iter)


def summarise(results):
    by_row = {}
    for r in results:
        by_row.setdefault(r['row'], []).append(r)

    def ms(vals):
        m = statistics.mean(vals)
        s = statistics.stdev(vals) if len(vals) > 1 else 0.0
        return m, s

    table = []
    for row, rs in by_row.items():
        km, ks = ms([r['knn_top1'] for r in rs])
        lm, ls = ms([r['linear_top1'] for r in rs])
        base = BASE.get(row, '')
        delta = ''
        if base in by_row:
            bm, _ = ms([r['knn_top1'] for r in by_row[base]])
            delta = f'{km - bm:+.2f}'
        table.append(dict(row=row, base=base, knn=km, knn_sd=ks, lin=lm,
                          lin_sd=ls, delta=delta, n=len(rs),
                          seconds=statistics.mean(r['seconds'] for r in rs)))
    return table


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--rows', nargs='+', default=ROWS)
    p.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    p.add_argument('--epochs', type=int, default=2)
    p.add_argument('--jobs', type=int, default=2,
                   help='runs in parallel (worker processes)')
    p.add_argument('--threads', type=int, default=1,
                   help='intra-op threads per worker')
    p.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs',
                                                  'bench_quality'))
    p.add_argument('--merge', action='store_true',
                   help='keep the results of other rows / seeds already in '
                   'the JSON (re-running some rows)')
    p.add_argument('--report', action='store_true',
                   help='only print the table of the existing results JSON')
    args = p.parse_args()
    if args.report:
        return report(osp.join(RESULTS, 'quality_digits.json'))
    unknown = [r for r in args.rows if r not in ROWS]
    if unknown:
        raise SystemExit(f'unknown rows {unknown}; choose from {ROWS}')
    os.makedirs(RESULTS, exist_ok=True)
    # seed-major order, so a partial run holds complete seeds; the random-
    # init floor is evaluated once per seed with the MoCo v2 network
    tasks = []
    for seed in args.seeds:
        tasks.append((FLOOR, seed, args.epochs, args.work_dir,
                      args.threads))
        tasks += [(row, seed, args.epochs, args.work_dir, args.threads)
                  for row in args.rows]
    results, failed, t0 = [], [], time.time()
    json_path = osp.join(RESULTS, 'quality_digits.json')
    if args.merge and osp.exists(json_path):
        with open(json_path) as f:
            old = json.load(f)
        if old.get('epochs') != args.epochs:
            raise SystemExit(f'--merge: {json_path} holds {old["epochs"]}-'
                             f'epoch results, not {args.epochs}')
        have = {(r['row'], r['seed']) for r in old['results']}
        # the floor of a seed already measured is not evaluated again
        tasks = [t for t in tasks if t[0] != FLOOR or (t[0], t[1]) not in
                 have]
        redo = {(t[0], t[1]) for t in tasks}
        results = [r for r in old['results']
                   if (r['row'], r['seed']) not in redo]
    # executor workers are not daemonic, so their runners can start
    # dataloader workers; one task per worker process keeps runs independent
    with ProcessPoolExecutor(args.jobs, mp_context=mp.get_context('spawn'),
                             max_tasks_per_child=1) as pool:
        futures = [pool.submit(run_one_safe, t) for t in tasks]
        for fut in as_completed(futures):
            r = fut.result()
            if 'error' in r:
                print(f"[{time.time() - t0:7.0f}s] {r['row']} seed "
                      f"{r['seed']}: FAILED {r['error']}", flush=True)
                failed.append(r)
                continue
            print(f"[{time.time() - t0:7.0f}s] {r['row']} seed {r['seed']}: "
                  f"kNN {r['knn_top1']:.2f} linear {r['linear_top1']:.2f} "
                  f"({r['seconds']:.0f}s train)", flush=True)
            results.append(r)
            with open(json_path, 'w') as f:
                json.dump(dict(epochs=args.epochs,
                               seeds=sorted({r['seed'] for r in results}),
                               jobs=args.jobs, threads=args.threads,
                               wall_seconds=time.time() - t0,
                               results=results, failed=failed), f,
                              indent=1)
    report(json_path)


def report(json_path):
    """Print the Markdown table of a results JSON and write the CSV / PNG
    next to it (also ``--report`` alone, without training)."""
    with open(json_path) as f:
        data = json.load(f)
    results = data['results']
    order = [FLOOR] + ROWS
    results.sort(key=lambda r: (order.index(r['row']), r['seed']))
    table = summarise(results)
    seeds = sorted({r['seed'] for r in results})
    print(f"\nDigits (4,000 train / 1,000 test), {data['epochs']} epochs of "
          f'batch 64 per row, seeds {seeds}, mean +- sd; '
          f"{data.get('wall_seconds', 0) / 60:.1f} min wall with "
          f"{data.get('jobs')} jobs x {data.get('threads')} thread(s)")
    moved = sorted({m for r in results for m in r['scaled']})
    print('schedule knobs scaled from the 20-epoch recipes: '
          + ('; '.join(moved) or 'none'))
    if data.get('failed'):
        print('FAILED: ' + '; '.join(f"{r['row']} seed {r['seed']}: "
                                      f"{r['error']}" for r in
                                      data['failed']))
    print('\n| row | base | kNN top-1 | vs base | linear top-1 | '
          'per seed (kNN) | train s/run |')
    print('|---|---|---|---|---|---|---|')
    for t in table:
        per = ' / '.join(f"{r['knn_top1']:.1f}" for r in results
                         if r['row'] == t['row'])
        lin = (f"{t['lin']:.2f} +- {t['lin_sd']:.2f}"
               if t['lin'] == t['lin'] else '-')
        print(f"| {t['row']} | {t['base'] or '-'} | {t['knn']:.2f} +- "
              f"{t['knn_sd']:.2f} | {t['delta'] or '-'} | {lin} | {per} | "
              f"{t['seconds']:.0f} |")
    base = osp.splitext(json_path)[0]
    with open(base + '.csv', 'w', newline='') as f:
        w = csv.DictWriter(f, fieldnames=list(table[0]))
        w.writeheader()
        w.writerows(table)
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(10, 4))
        ax.bar(range(len(table)), [t['knn'] for t in table],
               yerr=[t['knn_sd'] for t in table])
        ax.axhline(table[0]['knn'], color='grey', ls='--', lw=1)
        ax.set_xticks(range(len(table)))
        ax.set_xticklabels([t['row'] for t in table], rotation=45,
                           ha='right')
        ax.set_ylabel('kNN top-1 (%)')
        ax.set_title(f"digits, {data['epochs']} epochs, {len(seeds)} seeds")
        ax.set_ylim(min(t['knn'] for t in table) - 5, 100)
        fig.tight_layout()
        fig.savefig(base + '.png', dpi=100)
    except ImportError:
        pass


if __name__ == '__main__':
    main()
