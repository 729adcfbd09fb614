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

    python benchmarks/bench_quality_digits.py --epochs 6 --seeds 0 1 2
    python benchmarks/bench_quality_digits.py --rows mocov2 interclr --seeds 0

Writes benchmarks/results/quality_digits.{json,csv,png}.
"""
import argparse
import copy
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

# name: (config, base row)
ROWS = {
    'mocov2': ('configs/mocov2/mocov2_resnet18-cifar_1xb64-coslr-20e_digits.py', None),
    'interclr': ('configs/interclr/interclr-moco_resnet18-cifar_1xb64-coslr-20e_digits.py', 'mocov2'),
    'npid': ('configs/invp/invp-npid-baseline_resnet18-cifar_1xb64-coslr-20e_digits.py', None),
    'invp': ('configs/invp/invp_resnet18-cifar_1xb64-coslr-20e_digits.py', 'npid'),
    'npid-fullsoftmax': ('configs/cld/npid-fullsoftmax_resnet18-cifar_1xb64-coslr-20e_digits.py', None),
    'cld-npid': ('configs/cld/cld-npid_resnet18-cifar_1xb64-coslr-20e_digits.py', 'npid-fullsoftmax'),
    'cld-mocov2': ('configs/cld/cld-mocov2_resnet18-cifar_1xb64-coslr-20e_digits.py', 'mocov2'),
    'simclr': ('configs/bsim/simclr_resnet18-cifar_1xb64-coslr-20e_digits.py', None),
    'bsim-simclr': ('configs/bsim/bsim-simclr_resnet18-cifar_1xb64-coslr-20e_digits.py', 'simclr'),
    'bsim-mocov2': ('configs/bsim/bsim-mocov2_resnet18-cifar_1xb64-coslr-20e_digits.py', 'mocov2'),
    'byol': ('configs/bsim/byol_resnet18-cifar_1xb64-coslr-20e_digits.py', None),
    'bsim-byol': ('configs/bsim/bsim-byol_resnet18-cifar_1xb64-coslr-20e_digits.py', 'byol'),
    'simsiam': ('configs/bsim/simsiam_resnet18-cifar_1xb64-coslr-20e_digits.py', None),
    'bsim-simsiam': ('configs/bsim/bsim-simsiam_resnet18-cifar_1xb64-coslr-20e_digits.py', 'simsiam'),
    'ccrop-mocov2': ('configs/ccrop/ccrop-mocov2_resnet18-cifar_1xb64-coslr-20e_digits.py', 'mocov2'),
    'rcrop-simclr': ('configs/ccrop/rcrop-simclr_resnet18-cifar_1xb64-coslr-20e_digits.py', None),
    'ccrop-simclr': ('configs/ccrop/ccrop-simclr_resnet18-cifar_1xb64-coslr-20e_digits.py', 'rcrop-simclr'),
}

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


def run_one(row, config, seed, epochs, work_root):
    from mmssl_ext.utils.budget import scale_schedule
    from mmengine.config import Config
    from mmengine.runner import Runner
    from mmssl_ext.engine.runners.knn_loop import _labels_of
    from mmssl_ext.utils.extract import extract_features

    cfg = Config.fromfile(osp.join(ROOT, config))
    moved = scale_schedule(cfg, epochs, BUDGET_EPOCHS)
    cfg.work_dir = osp.join(work_root, f'{row}_s{seed}')
    cfg.randomness = dict(seed=seed, deterministic=False)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=-1,
                                        save_last=False)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=50)
    cfg.custom_hooks = list(cfg.get('custom_hooks', [])) + [
        dict(type='ValBeforeTrainHook')
    ]
    cfg.experiment_name = f'{row}_s{seed}_{int(time.time())}'
    runner = Runner.from_cfg(cfg)
    t0 = time.time()
    runner.train()
    seconds = time.time() - t0
    init = runner.message_hub.get_info('val_before_train')['knn/top1']
    knn = runner.val_loop.run()['knn/top1']
    loop = runner.val_loop
    tr = extract_features(runner.model, loop.bank_dataloader, progress=False)
    te = extract_features(runner.model, loop.dataloader, progress=False)
    lin = linear_probe(tr.cpu(), _labels_of(loop.bank_dataloader.dataset),
                       te.cpu(), _labels_of(loop.dataloader.dataset))
    return dict(row=row, seed=seed, epochs=epochs, knn_top1=knn,
                init_knn_top1=init, linear_top1=lin, seconds=seconds,
                scaled=moved)


def summarise(results):
    by_row = {}
    for r in results:
        by_row.setdefault(r['row'], []).append(r)

    def ms(vals):
        m = statistics.mean(vals)
        s = statistics.stdev(vals) if len(vals) > 1 else 0.0
        return m, s

    table = []
    init = [r['init_knn_top1'] for r in results]
    if init:
        m, s = ms(init)
        table.append(dict(row='random init (floor)', base='', knn=m,
                          knn_sd=s, lin=float('nan'), lin_sd=0.0, delta='',
                          n=len(init), seconds=0.0))
    for row, rs in by_row.items():
        km, ks = ms([r['knn_top1'] for r in rs])
        lm, ls = ms([r['linear_top1'] for r in rs])
        base = ROWS[row][1] or ''
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
    p.add_argument('--rows', nargs='+', default=list(ROWS))
    p.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    p.add_argument('--epochs', type=int, default=6)
    p.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs',
                                                  'bench_quality'))
    args = p.parse_args()
    sys.path.insert(0, ROOT)
    os.chdir(ROOT)
    import mmssl_ext  # noqa: F401
    unknown = [r for r in args.rows if r not in ROWS]
    if unknown:
        raise SystemExit(f'unknown rows {unknown}; choose from {list(ROWS)}')
    os.makedirs(RESULTS, exist_ok=True)
    results, t0 = [], time.time()
    for seed in args.seeds:
        for row in args.rows:  # interleaved: each seed runs every row
            cfg = ROWS[row][0]
            if not osp.exists(osp.join(ROOT, cfg)):
                print(f'skip {row}: {cfg} missing')
                continue
            r = run_one(row, cfg, seed, args.epochs, args.work_dir)
            print(f"[{time.time() - t0:7.0f}s] {row} seed {seed}: kNN "
                  f"{r['knn_top1']:.2f} (init {r['init_knn_top1']:.2f}) "
                  f"linear {r['linear_top1']:.2f}")
            results.append(r)
            with open(osp.join(RESULTS, 'quality_digits.json'), 'w') as f:
                json.dump(dict(epochs=args.epochs, seeds=args.seeds,
                               results=results), f, indent=1)
    table = summarise(results)
    hdr = (f"{'row':<22}{'base':<18}{'kNN top-1':>16}{'vs base':>9}"
           f"{'linear top-1':>16}{'s/run':>8}")
    print(f'\nDigits (4,000 train / 1,000 test), {args.epochs} epochs, '
          f'seeds {args.seeds}: mean +- sd')
    print(hdr)
    for t in table:
        print(f"{t['row']:<22}{t['base']:<18}{t['knn']:>9.2f} +-{t['knn_sd']:4.2f}"
              f"{t['delta']:>9}{t['lin']:>9.2f} +-{t['lin_sd']:4.2f}"
              f"{t['seconds']:>8.0f}")
    with open(osp.join(RESULTS, 'quality_digits.csv'), 'w', newline='') as f:
        w = csv.DictWriter(f, fieldnames=list(table[0]))
        w.writeheader()
        w.writerows(table)
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
        rows = [t for t in table]
        fig, ax = plt.subplots(figsize=(10, 4))
        ax.bar(range(len(rows)), [t['knn'] for t in rows],
               yerr=[t['knn_sd'] for t in rows])
        ax.set_xticks(range(len(rows)))
        ax.set_xticklabels([t['row'] for t in rows], rotation=45,
                           ha='right')
        ax.set_ylabel('kNN top-1 (%)')
        ax.set_ylim(min(t['knn'] for t in rows) - 5, 100)
        fig.tight_layout()
        fig.savefig(osp.join(RESULTS, 'quality_digits.png'), dpi=100)
    except ImportError:
        pass


if __name__ == '__main__':
    main()
