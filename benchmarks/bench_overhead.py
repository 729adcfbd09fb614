"""Overhead of every method against its base algorithm, side by side in one
process: time per training iteration from the real digits configs.

    OMP_NUM_THREADS=1 python benchmarks/bench_overhead.py \
        [--rounds 5] [--iters 4] [--pairs interclr invp ...] [--out JSON]
    OMP_NUM_THREADS=1 python benchmarks/bench_overhead.py --matrix

Each row is a full MMEngine ``Runner`` built from the row's digits config
(model, optimizer wrapper, parameter schedulers, the method's own hooks such
as ``OfflineClusterHook`` / ``ContrastiveCropHook``), set up as
``Runner.train`` does (``before_run``, weight init, ``before_train``,
``before_train_epoch``: memory banks initialised, initial clustering done, ContrastiveCrop boxes
computed once and switched on). One iteration is

* ``data``: one batch through the row's training pipeline in this process
  (``num_workers=0``, so it is the transform cost itself), and
* ``step``: ``train_loop.run_iter`` -- the before/after-iteration hooks
  (InterCLR's centroid refresh every 10 iterations and small-cluster
  handling every iteration included) and ``model.train_step``
  (forward, backward, optimizer step, memory/queue updates).

Times are process CPU times with one torch thread, so a busy machine slows
the run but hardly moves the ratios. Rounds are interleaved over all rows,
alternating the order of each pair; a ratio is the median over rounds of
(method / base) measured in adjacent slots. The box refresh of
ContrastiveCrop (once per ``interval`` epochs) is timed separately.

Prints a Markdown table and writes benchmarks/results/overhead.json.
"""
import argparse
import json
import os
import os.path as osp
import statistics
import sys
import time

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..'))
sys.path.insert(0, ROOT)
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

from digits_rows import (CONFIGS, MATRIX, MATRIX_BASE, load,  # noqa: E402
                         machine_info, quiet)

# row name -> model overrides: every digits recipe as it is, plus the CLD
# models with the group branch removed (the same views and instance branch,
# so the ratio is the group branch alone)
ROWS = dict({name: None for name in list(CONFIGS) + list(MATRIX)},
            **{'cld-npid-nogroup': dict(group_head=None),
               'cld-mocov2-nogroup': dict(group_head=None)})
# the digits speed-up of the quality benchmark: a row with ``-cl`` trains
# with ChannelsLastHook (`--layout`; no target, the ratio is the gain)
LAYOUT_PAIRS = {f'{n} channels_last': (f'{n}-cl', n, None)
                for n in ('mocov2', 'interclr', 'invp', 'simclr')}
ROWS.update({m: None for m, _, _ in LAYOUT_PAIRS.values()})
# (method, base, target): target is the bound on the step ratio;
# 'fwd' means "within 10% of the encoder-pass ratio" (BSIM)
PAIRS = {
    'interclr': ('interclr', 'mocov2', 1.10),
    'invp': ('invp', 'npid', 1.10),
    'cld-npid': ('cld-npid', 'npid-fullsoftmax', None),
    'cld-npid (same views)': ('cld-npid', 'cld-npid-nogroup', 1.10),
    'cld-mocov2': ('cld-mocov2', 'mocov2', None),
    'cld-mocov2 (same views)': ('cld-mocov2', 'cld-mocov2-nogroup', 1.10),
    'bsim-simclr': ('bsim-simclr', 'simclr', 'fwd'),
    'bsim-mocov2': ('bsim-mocov2', 'mocov2', 'fwd'),
    'bsim-byol': ('bsim-byol', 'byol', 'fwd'),
    'bsim-simsiam': ('bsim-simsiam', 'simsiam', 'fwd'),
    'ccrop-mocov2': ('ccrop-mocov2', 'mocov2', 1.05),
    'ccrop-simclr': ('ccrop-simclr', 'simclr', 1.05),
}
# the composition matrix: each cell over its framework alone (no target:
# the branches add their own work, the ratio is what it costs)
MATRIX_PAIRS = {cell: (cell, fw, None) for cell, fw in MATRIX_BASE.items()}
# encoder passes per image (with grad, without grad) of the BSIM pairs, base
# then BSIM with mixed_view='a' (one extra gradient pass of the mixture)
PASSES = {
    'bsim-simclr': ((2, 0), (3, 0)),
    'bsim-mocov2': ((1, 1), (2, 1)),
    'bsim-byol': ((2, 2), (3, 2)),
    'bsim-simsiam': ((2, 0), (3, 0)),
}


def build_row(name, work_dir):
    """A Runner for ``name`` set up as ``Runner.train`` does, plus an
    in-process batch iterator over its training pipeline."""
    import torch
    from mmengine.runner import Runner
    from torch.utils.data import DataLoader

    overrides = ROWS[name]
    cfg = load(name.replace('-nogroup', '').replace('-cl', ''))
    if overrides:
        cfg.model.update(overrides)
    quiet(cfg, osp.join(work_dir, name), name)
    if name.endswith('-cl'):
        cfg.custom_hooks = list(cfg.get('custom_hooks', [])) + [
            dict(type='ChannelsLastHook')]
    cfg.randomness = dict(seed=0)
    runner = Runner.from_cfg(cfg)
    runner._train_loop = runner.build_train_loop(runner._train_loop)
    runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    runner.param_schedulers = runner.build_param_scheduler(
        runner.param_schedulers)
    runner.call_hook('before_run')
    runner._init_model_weights()
    runner.optim_wrapper.initialize_count_status(
        runner.model, 0, runner.train_loop.max_iters)
    runner.call_hook('before_train')
    runner.call_hook('before_train_epoch')
    refresh_s = None
    hooks = [h for h in runner.hooks
             if type(h).__name__ == 'ContrastiveCropHook']
    if hooks:  # boxes from the encoder, switched on (timed once)
        hook = hooks[0]
        t0 = time.process_time()
        hook.refresh(runner)
        refresh_s = time.process_time() - t0
        hook._box_dataset(runner).store.set_active(True)
    runner.model.train()
    loader = runner.train_dataloader
    g = torch.Generator().manual_seed(0)
    local = DataLoader(loader.dataset, batch_size=loader.batch_size,
                       shuffle=True, drop_last=True, num_workers=0,
                       collate_fn=loader.collate_fn, generator=g)
    return dict(runner=runner, loader=local, it=iter(local), idx=0,
                refresh_s=refresh_s)


def pass_costs(row, rounds):
    """CPU seconds of one encoder pass over a batch of the row's size, with
    gradient (forward + backward) and without (forward under no_grad): the
    unit costs of the BSIM cost model, measured on the digits encoder."""
    import torch
    model = row['runner'].model
    enc = torch.nn.Sequential(model.backbone, model.neck)
    x = torch.randn(row['loader'].batch_size, 3, 32, 32)
    grad, nograd = [], []
    for _ in range(rounds + 1):
        t0 = time.process_time()
        out = enc(x)[0]
        out.float().pow(2).mean().backward()
        t1 = time.process_time()
        with torch.no_grad():
            enc(x)
        t2 = time.process_time()
        grad.append(t1 - t0)
        nograd.append(t2 - t1)
    model.zero_grad(set_to_none=True)
    return statistics.median(grad[1:]), statistics.median(nograd[1:])


def one_iter(row):
    t0 = time.process_time()
    try:
        batch = next(row['it'])
    except StopIteration:
        row['it'] = iter(row['loader'])
        batch = next(row['it'])
    t1 = time.process_time()
    row['runner'].train_loop.run_iter(row['idx'], batch)
    row['idx'] += 1
    t2 = time.process_time()
    return t1 - t0, t2 - t1


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--pairs', nargs='+', default=None)
    p.add_argument('--matrix', action='store_true',
                   help='the composition matrix cells over their framework '
                   '(writes composition_overhead.json)')
    p.add_argument('--layout', action='store_true',
                   help='channels_last against the default memory layout '
                   '(ChannelsLastHook) on four digits rows (writes '
                   'layout_speed.json)')
    p.add_argument('--rounds', type=int, default=5)
    p.add_argument('--iters', type=int, default=4)
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--work-dir', default='/tmp/mmssl_ext_bench_overhead')
    p.add_argument('--out', default=None)
    args = p.parse_args()
    if args.matrix:
        PAIRS.update(MATRIX_PAIRS)
    if args.layout:
        PAIRS.update(LAYOUT_PAIRS)
    args.pairs = args.pairs or list(
        MATRIX_PAIRS if args.matrix else LAYOUT_PAIRS if args.layout
        else PAIRS)
    args.out = args.out or osp.join(
        ROOT, 'benchmarks', 'results',
        'composition_overhead.json' if args.matrix else
        'layout_speed.json' if args.layout else 'overhead.json')
    unknown = [q for q in args.pairs if q not in PAIRS]
    if unknown:
        raise SystemExit(f'unknown pairs {unknown}; choose from '
                         f'{list(PAIRS)}')

    import torch
    torch.set_num_threads(1)
    import mmssl_ext  # noqa: F401

    names = []
    for q in args.pairs:
        for n in PAIRS[q][:2]:
            if n not in names:
                names.append(n)
    t_start = time.perf_counter()
    rows = {}
    for n in names:
        t0 = time.perf_counter()
        rows[n] = build_row(n, args.work_dir)
        for _ in range(args.warmup):
            one_iter(rows[n])
        print(f'built {n} ({time.perf_counter() - t0:.0f} s)', flush=True)

    # per round, per row: median data / step CPU seconds of ``iters`` iters
    data = {n: [] for n in names}
    step = {n: [] for n in names}
    for r in range(args.rounds):
        order = names if r % 2 == 0 else names[::-1]
        for n in order:
            ds, ss = zip(*(one_iter(rows[n]) for _ in range(args.iters)))
            data[n].append(statistics.median(ds))
            step[n].append(statistics.median(ss))
        print(f'round {r + 1}/{args.rounds} done '
              f'({time.perf_counter() - t_start:.0f} s)', flush=True)
    wall = time.perf_counter() - t_start

    costs = {}  # base row -> (grad, no-grad) CPU s of one encoder pass
    for q in args.pairs:
        if q in PASSES:
            b = PAIRS[q][1]
            costs[b] = pass_costs(rows[b], args.rounds)
            print(f'{b} encoder pass, batch 64: with gradient '
                  f'{1e3 * costs[b][0]:.0f} ms, without '
                  f'{1e3 * costs[b][1]:.0f} ms CPU', flush=True)

    def paired(a, b, what):
        return statistics.median([x / y for x, y in zip(what[a], what[b])])

    table = []
    for q in args.pairs:
        m, b, target = PAIRS[q]
        tot = {n: [d + s for d, s in zip(data[n], step[n])] for n in (m, b)}
        fwd = cost = None
        if q in PASSES:
            (bg, bn), (xg, xn) = PASSES[q]
            fwd = (xg + xn) / (bg + bn)
            cg, cn = costs[b]
            cost = (xg * cg + xn * cn) / (bg * cg + bn * cn)
        step_ratio = paired(m, b, step)
        if target == 'fwd':
            # the extra work is one forward+backward of the mixed view: the
            # expected ratio weighs each pass by its measured cost
            ok = abs(step_ratio / cost - 1) <= 0.10
            tgt = (f'within 10% of {cost:.2f} (pass-cost ratio; raw pass '
                   f'count {fwd:.2f})')
        elif target is None:
            ok, tgt = None, ('-' if q in MATRIX_PAIRS or q in LAYOUT_PAIRS
                             else 'n/a (different views)')
        else:
            key = tot if q.startswith('ccrop') else step
            ok = paired(m, b, key) <= target
            tgt = f'<= {target:.2f}' + (' (data+step)'
                                        if q.startswith('ccrop') else '')
        table.append(dict(
            pair=q, method=m, base=b,
            method_step_ms=1e3 * statistics.median(step[m]),
            base_step_ms=1e3 * statistics.median(step[b]),
            method_data_ms=1e3 * statistics.median(data[m]),
            base_data_ms=1e3 * statistics.median(data[b]),
            step_ratio=step_ratio,
            total_ratio=paired(m, b, tot),
            fwd_ratio=fwd, pass_cost_ratio=cost, target=tgt,
            meets_target=ok,
            refresh_s=rows[m]['refresh_s']))

    print(f'\nPer-iteration CPU time, one thread, digits configs (batch 64, '
          f'32 px, ResNet-18 CIFAR 16 ch); median of {args.rounds} '
          f'interleaved rounds x {args.iters} iterations ({wall:.0f} s)\n')
    print('| method / base | step ms | base step ms | step ratio | '
          'data+step ratio | target | met |')
    print('|---|---|---|---|---|---|---|')
    for t in table:
        met = {True: 'yes', False: 'NO', None: '-'}[t['meets_target']]
        print(f"| {t['pair']} / {t['base']} | {t['method_step_ms']:.0f} | "
              f"{t['base_step_ms']:.0f} | {t['step_ratio']:.2f} | "
              f"{t['total_ratio']:.2f} | {t['target']} | {met} |")
    if args.layout:  # an epoch: 62 iterations (4,000 digits, batch 64)
        print('\n| row | s / epoch (data + step), default layout | '
              'channels_last |\n|---|---|---|')
        for t in table:
            per = [62e-3 * (t[f'{k}_data_ms'] + t[f'{k}_step_ms'])
                   for k in ('base', 'method')]
            t['epoch_s_default'], t['epoch_s_channels_last'] = per
            print(f"| {t['base']} | {per[0]:.1f} | {per[1]:.1f} |")
    for t in table:
        if t['refresh_s'] is not None:
            print(f"\n{t['method']}: box refresh (encoder over the 4,000 "
                  f"training images) {t['refresh_s']:.1f} s CPU, once per "
                  f'interval')
    os.makedirs(osp.dirname(args.out), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(dict(
            command='OMP_NUM_THREADS=1 python benchmarks/bench_overhead.py '
            + ' '.join(sys.argv[1:]),
            settings=vars(args), torch=torch.__version__,
            machine=machine_info(),
            load_avg=os.getloadavg(), wall_s=wall,
            encoder_pass_cpu_s={b: dict(grad=g, nograd=n)
                                for b, (g, n) in costs.items()},
            per_round_ms={n: dict(data=[1e3 * x for x in data[n]],
                                  step=[1e3 * x for x in step[n]])
                          for n in names},
            table=table), f, indent=2)
    print(f'\nwritten {args.out}')


if __name__ == '__main__':
    main()
