"""BSIM overhead: per-iteration train-step time (forward, backward, SGD step)
of each BSIM-X against X (X = SimCLR, MoCo, BYOL, SimSiam), same process,
same weights and batches, interleaved rounds, medians.

    OMP_NUM_THREADS=1 python benchmarks/bench_bsim_overhead.py \
        [--rounds 7] [--iters 3] [--batch 32] [--size 32] [--channels 8] \
        [--out JSON]

Tiny CIFAR ResNet-18 (``--channels`` base channels) on the CPU, one thread.
BSIM's extra work is one forward/backward of the mixed view, so the time
ratio should match the ratio of encoder passes:

* ``fwd ratio``: images through an encoder (online or momentum/target),
  BSIM over base;
* ``cost ratio``: the same with a gradient pass counted as 3 (forward +
  backward ~ 2 forwards) and a no-grad pass as 1.

Times are process CPU times (one torch thread), so waiting for a core on a
shared machine is not counted; wall times are kept in the JSON. Time ratios:
``ratio (min)`` is best-of-rounds
BSIM-X over best-of-rounds X, ``ratio (paired)`` the median over rounds of
the ratio of the two adjacent measurements. ``mix ms`` is the mixer alone
(draw + mixup/cutmix of one view) per iteration.

Writes benchmarks/results/bsim_overhead.json and prints a Markdown table.
"""
import argparse
import json
import os
import os.path as osp
import platform
import statistics
import sys
import time

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..'))
sys.path.insert(0, ROOT)

# (images through an encoder with grad, without grad), per batch image,
# for (base, BSIM with mixed_view='a')
PASSES = {
    'SimCLR': ((2, 0), (3, 0)),
    'MoCo': ((1, 1), (2, 1)),
    'BYOL': ((2, 2), (3, 2)),
    'SimSiam': ((2, 0), (3, 0)),
}


def model_cfgs(channels: int):
    out = channels * 8
    bn = dict(type='BN1d')
    backbone = dict(type='ResNet_CIFAR', depth=18, stem_channels=channels,
                    base_channels=channels, norm_cfg=dict(type='BN'),
                    zero_init_residual=False)
    contrastive = dict(type='ContrastiveHead',
                       loss=dict(type='CrossEntropyLoss'), temperature=0.2)
    latent = dict(type='NonLinearNeck', in_channels=out, hid_channels=64,
                  out_channels=32, num_layers=2, with_bias=True,
                  with_last_bn=False, norm_cfg=bn, with_avg_pool=True)
    predictor = dict(type='NonLinearNeck', in_channels=32, hid_channels=64,
                     out_channels=32, num_layers=2, with_bias=True,
                     with_last_bn=False, norm_cfg=bn, with_avg_pool=False)
    return {
        'SimCLR': dict(backbone=backbone, head=contrastive,
                       neck=dict(type='NonLinearNeck', in_channels=out,
                                 hid_channels=64, out_channels=32,
                                 num_layers=2, norm_cfg=bn)),
        'MoCo': dict(backbone=backbone, head=contrastive, queue_len=4096,
                     feat_dim=32, momentum=0.01,
                     neck=dict(type='MoCoV2Neck', in_channels=out,
                               hid_channels=64, out_channels=32)),
        'BYOL': dict(backbone=backbone, neck=latent, base_momentum=0.01,
                     head=dict(type='LatentPredictHead', predictor=predictor,
                               loss=dict(type='CosineSimilarityLoss'))),
        'SimSiam': dict(backbone=backbone, neck=latent,
                        head=dict(type='LatentPredictHead',
                                  predictor=predictor,
                                  loss=dict(type='CosineSimilarityLoss'))),
    }


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--rounds', type=int, default=6)
    p.add_argument('--iters', type=int, default=2)
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--batch', type=int, default=32)
    p.add_argument('--size', type=int, default=32)
    p.add_argument('--channels', type=int, default=8)
    p.add_argument('--out', default=osp.join(ROOT, 'benchmarks', 'results',
                                             'bsim_overhead.json'))
    args = p.parse_args()

    import torch
    from mmengine.logging import MessageHub
    from mmengine.registry import init_default_scope

    import mmssl_ext  # noqa: F401
    from mmssl_ext.registry import MODELS

    torch.set_num_threads(1)
    init_default_scope('mmssl_ext')
    MessageHub.get_instance('bench_bsim').update_info('max_iters', 10**6)
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    batches = [[torch.randn(args.batch, 3, args.size, args.size, generator=g)
                for _ in range(2)] for _ in range(4)]

    runs = {}  # name -> (model, optimizer)
    for algo, cfg in model_cfgs(args.channels).items():
        torch.manual_seed(0)
        base = MODELS.build(dict(cfg, type=algo))
        bsim = MODELS.build(dict(cfg, type=f'BSIM{algo}'))
        bsim.load_state_dict(base.state_dict())
        for name, m in ((algo, base), (f'BSIM{algo}', bsim)):
            m.train()
            runs[name] = (m, torch.optim.SGD(m.parameters(), lr=0.01,
                                             momentum=0.9))

    def step(name, it):
        model, opt = runs[name]
        losses = model.loss(batches[it % len(batches)], None)
        loss, _ = model.parse_losses(losses)
        opt.zero_grad()
        loss.backward()
        opt.step()

    for name in runs:
        for it in range(args.warmup):
            step(name, it)
    times = {name: [] for name in runs}  # process CPU time per iteration
    walls = {name: [] for name in runs}
    order = list(runs)
    t_start = time.perf_counter()
    for r in range(args.rounds):
        # interleave, alternating which of the pair goes first
        for algo in PASSES:
            pair = [algo, f'BSIM{algo}']
            if r % 2:
                pair.reverse()
            for name in pair:
                t0, c0 = time.perf_counter(), time.process_time()
                for it in range(args.iters):
                    step(name, it)
                times[name].append((time.process_time() - c0) / args.iters)
                walls[name].append((time.perf_counter() - t0) / args.iters)
    wall = time.perf_counter() - t_start

    # the mixer alone (both modes), for the record
    from mmssl_ext.models.bsim.instance_mix import InstanceMixer
    mixer = InstanceMixer('both')
    x = batches[0][0]
    c0 = time.process_time()
    for _ in range(50):
        mixer(x)
    mix_ms = 1e3 * (time.process_time() - c0) / 50

    rows = []
    for algo, ((bg, bn), (xg, xn)) in PASSES.items():
        tb, tx = times[algo], times[f'BSIM{algo}']
        rows.append(dict(
            algo=algo,
            base_ms=1e3 * statistics.median(tb),
            bsim_ms=1e3 * statistics.median(tx),
            ratio_min=min(tx) / min(tb),
            ratio_paired=statistics.median(
                [a / b for a, b in zip(tx, tb)]),
            mix_ms=mix_ms,
            fwd_ratio=(xg + xn) / (bg + bn),
            cost_ratio=(3 * xg + xn) / (3 * bg + bn),
            base_cpu_ms_all=[1e3 * t for t in tb],
            bsim_cpu_ms_all=[1e3 * t for t in tx],
            wall_ratio_median=statistics.median(walls[f'BSIM{algo}']) /
            statistics.median(walls[algo])))

    print(f'BSIM overhead, CPU time per train step, 1 thread, CIFAR ResNet-18 '
          f'(base_channels={args.channels}), batch {args.batch}, '
          f'{args.size} px; median of {args.rounds} interleaved rounds x '
          f'{args.iters} iterations ({wall:.0f} s)\n')
    print('| framework | X CPU ms/iter | BSIM-X CPU ms/iter | ratio (min) | '
          'ratio (paired) | fwd ratio | cost ratio (bwd=2 fwd) |')
    print('|---|---|---|---|---|---|---|')
    for r in rows:
        print(f"| {r['algo']} | {r['base_ms']:.0f} | {r['bsim_ms']:.0f} | "
              f"{r['ratio_min']:.2f} | {r['ratio_paired']:.2f} | "
              f"{r['fwd_ratio']:.2f} | {r['cost_ratio']:.2f} |")
    print(f'\nmixer alone (draw + mix one view): {mix_ms:.2f} ms/iter')
    os.makedirs(osp.dirname(args.out), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(
            dict(
                command='OMP_NUM_THREADS=1 python benchmarks/'
                'bench_bsim_overhead.py ' + ' '.join(sys.argv[1:]),
                settings=vars(args),
                torch=torch.__version__,
                machine=platform.machine(),
                processor=platform.processor(),
                wall_s=wall,
                load_avg=os.getloadavg(),
                rows=rows),
            f,
            indent=2)
    print(f'\nwritten {args.out}')


if __name__ == '__main__':
    main()
