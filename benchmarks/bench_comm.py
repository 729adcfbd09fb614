"""Distributed cost model: bytes each rank receives per training iteration,
per method, at ImageNet scale (N = 1,281,167 images, D = 128, 8 ranks x 32),
computed from the collectives the code actually issues, against the
reference InterCLR implementation's full-bank broadcast
(1,281,167 x 128 x 4 B = 656 MB received by every rank, every iteration).

    python benchmarks/bench_comm.py [--methods interclr invp ...] [--iters 20]

How: for each method, two gloo processes train the method's digits config
(real Runner, hooks and DDP wrapper, ``tools/train.py``'s CPU set-up) with a
per-rank batch of 32. Every call of the ``torch.distributed`` collectives
(``all_gather``, ``all_gather_into_tensor``, ``broadcast``, ``all_reduce``,
``reduce_scatter``, ``all_gather_object``, ``broadcast_object_list``) is
recorded with its shapes and dtypes during ``--iters`` training iterations
(after the start-up work of ``before_train``: bank initialisation and the
initial clustering are one-off costs, reported apart). For ContrastiveCrop
one box refresh is recorded separately and amortised over its interval
(20 epochs of 5,004 iterations on ImageNet).

Each recorded shape is mapped to ImageNet scale by its digits value:
clusters 40 -> 10,000, feature dim 64 -> 128,
bank length 4,000 -> 1,281,167, queue 1,024 -> 65,536, and image sides
32 -> 224 (height and width of 4-D image tensors only). Bytes received per
rank with W = 8: all-gather (W - 1) x input, broadcast 1 x tensor (non-source
ranks), ring all-reduce 2 (W - 1) / W x tensor; pickled objects by their
pickled size. DDP's gradient all-reduce (identical for a method and its base:
2 x 7/8 x 94 MB for ResNet-50) is not a collective of the method and is left
out.

Prints a Markdown table and writes benchmarks/results/comm_model.json.
"""
import argparse
import json
import os
import os.path as osp
import pickle
import socket
import sys
import tempfile
import time
from collections import defaultdict

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..'))
sys.path.insert(0, ROOT)
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

from digits_rows import load, quiet  # noqa: E402

# method -> its base row (the extra bytes of a method are over its base);
# CLD's NPID row is compared with the memory-bank baseline measured here
BASE = {'interclr': 'mocov2', 'invp': 'npid', 'cld-npid': 'npid',
        'cld-mocov2': 'mocov2', 'bsim-mocov2': 'mocov2',
        'ccrop-mocov2': 'mocov2'}
METHODS = ['mocov2', 'interclr', 'npid', 'invp', 'cld-npid', 'cld-mocov2',
           'bsim-simclr', 'bsim-mocov2', 'ccrop-mocov2']
WORLD, IMAGENET_WORLD = 2, 8
# 32 per rank as on ImageNet (and 2 x 32 divides MMPretrain MoCo's queue of
# 1,024, which it asserts)
PER_RANK_BATCH = 32
# digits value -> ImageNet value, by dimension meaning
SCALE = {40: 10000, 64: 128, 4000: 1281167, 1024: 65536}
IMAGE_SIDE = (32, 224)
ITERS_PER_INTERVAL = 20 * 5004  # ContrastiveCrop ImageNet: every 20 epochs
REFERENCE_MB = 1281167 * 128 * 4 / 1e6


def imagenet_numel(shape):
    out = 1
    for i, s in enumerate(shape):
        if len(shape) == 4 and i >= 2 and s == IMAGE_SIDE[0]:
            s = IMAGE_SIDE[1]
        else:
            s = SCALE.get(s, s)
        out *= s
    return out


def received_bytes(op, nbytes, world):
    if op in ('all_gather', 'all_gather_into_tensor', 'all_gather_object'):
        return (world - 1) * nbytes
    if op in ('broadcast', 'broadcast_object_list'):
        return nbytes
    if op in ('all_reduce', 'reduce_scatter'):
        return 2 * (world - 1) / world * nbytes
    raise KeyError(op)


class Recorder:
    """Wraps the public ``torch.distributed`` collectives (the names
    mmengine.dist and MMPretrain call) and records every call while on."""

    OPS = ('all_gather', 'all_gather_into_tensor', 'broadcast', 'all_reduce',
           'reduce_scatter', 'all_gather_object', 'broadcast_object_list')

    def __init__(self):
        import torch.distributed as td
        self.on, self.calls = False, []
        for op in self.OPS:
            fn = getattr(td, op)
            setattr(td, op, self._wrap(op, fn))

    def _wrap(self, op, fn):
        import torch

        def wrapped(*args, **kwargs):
            if self.on:
                if op == 'all_gather':
                    t = args[1] if len(args) > 1 else kwargs['tensor']
                elif op in ('all_gather_object', ):
                    t = args[1] if len(args) > 1 else kwargs['obj']
                elif op == 'broadcast_object_list':
                    t = args[0] if args else kwargs['object_list']
                elif op == 'all_gather_into_tensor':
                    t = args[1] if len(args) > 1 else kwargs['input_tensor']
                else:
                    t = args[0] if args else kwargs['tensor']
                if isinstance(t, torch.Tensor):
                    self.calls.append(dict(
                        op=op, shape=list(t.shape), dtype=str(t.dtype),
                        itemsize=t.element_size()))
                else:
                    self.calls.append(dict(op=op, shape=None, dtype='object',
                                           pickled=len(pickle.dumps(t))))
            return fn(*args, **kwargs)
        return wrapped


class _Stop(Exception):
    pass


def _worker(rank, method, iters, port, out_dir):
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(WORLD),
                      LOCAL_RANK=str(rank), MASTER_ADDR='127.0.0.1',
                      MASTER_PORT=str(port), OMP_NUM_THREADS='1')
    import torch
    torch.set_num_threads(1)
    rec = Recorder()
    import mmssl_ext  # noqa: F401
    from mmengine.hooks import Hook
    from mmengine.runner import Runner
    from mmssl_ext.utils.launch import setup_distributed_cpu

    cfg = load(method)
    cfg.launcher = 'pytorch'
    setup_distributed_cpu(cfg, 'pytorch')
    cfg.train_dataloader.batch_size = PER_RANK_BATCH
    cfg.train_dataloader.num_workers = 0
    cfg.train_dataloader.persistent_workers = False
    quiet(cfg, osp.join(out_dir, method), method)

    class Count(Hook):
        priority = 'LOWEST'  # after every other hook's before_train

        def before_train(self, runner):
            rec.calls.clear()
            rec.on = True

        def after_train_iter(self, runner, batch_idx, data_batch=None,
                             outputs=None):
            # runner.iter is 0-based here (mmengine increments it after
            # the after_train_iter hooks)
            if runner.iter + 1 >= iters:
                rec.on = False
                raise _Stop()

    runner = Runner.from_cfg(cfg)
    runner.register_hook(Count())
    try:
        runner.train()
    except _Stop:
        pass
    result = dict(iters=iters, per_iter=list(rec.calls))
    hooks = [h for h in runner.hooks
             if type(h).__name__ == 'ContrastiveCropHook']
    if hooks:
        rec.calls.clear()
        rec.on = True
        hooks[0].refresh(runner)
        rec.on = False
        result['per_refresh'] = list(rec.calls)
    if rank == 0:
        with open(osp.join(out_dir, f'{method}.json'), 'w') as f:
            json.dump(result, f)
    import torch.distributed as td
    td.barrier()
    td.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def summarise(calls, scale=1.0):
    """(digits bytes/rank at W=2, ImageNet bytes/rank at W=8, by op)."""
    digits = imnet = 0.
    by_op = defaultdict(float)
    for c in calls:
        if c['shape'] is None:
            nb = c['pickled']
            nb_in = nb  # small metadata: kept as recorded
        else:
            n = 1
            for s in c['shape']:
                n *= s
            nb = n * c['itemsize']
            nb_in = imagenet_numel(c['shape']) * c['itemsize']
        digits += received_bytes(c['op'], nb, WORLD) * scale
        r = received_bytes(c['op'], nb_in, IMAGENET_WORLD) * scale
        imnet += r
        key = f"{c['op']} {c['shape']} {c['dtype']}"
        by_op[key] += r
    return digits, imnet, dict(by_op)


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--methods', nargs='+', default=METHODS)
    p.add_argument('--iters', type=int, default=20)
    p.add_argument('--out', default=osp.join(ROOT, 'benchmarks', 'results',
                                             'comm_model.json'))
    args = p.parse_args()
    import torch.multiprocessing as tmp
    out_dir = tempfile.mkdtemp(prefix='mmssl_ext_comm_')
    table = []
    for m in args.methods:
        t0 = time.time()
        tmp.spawn(_worker, args=(m, args.iters, _free_port(), out_dir),
                  nprocs=WORLD, join=True)
        with open(osp.join(out_dir, f'{m}.json')) as f:
            res = json.load(f)
        n = len(res['per_iter'])
        d_b, i_b, by_op = summarise(res['per_iter'], 1.0 / res['iters'])
        row = dict(method=m, calls_per_iter=n / res['iters'],
                   digits_bytes_per_iter=d_b, imagenet_bytes_per_iter=i_b,
                   imagenet_by_collective=by_op)
        if 'per_refresh' in res:
            _, r_b, r_op = summarise(res['per_refresh'])
            row['imagenet_bytes_per_refresh'] = r_b
            row['imagenet_refresh_collectives'] = r_op
            row['imagenet_bytes_per_iter'] += r_b / ITERS_PER_INTERVAL
        row['fraction_of_reference'] = (row['imagenet_bytes_per_iter'] / 1e6
                                        / REFERENCE_MB)
        table.append(row)
        print(f'{m}: {n / res["iters"]:.1f} collectives/iter, '
              f'{row["imagenet_bytes_per_iter"] / 1e6:.3f} MB/iter/rank at '
              f'ImageNet scale ({time.time() - t0:.0f} s)', flush=True)
    print('\nBytes received per rank per iteration (method collectives; '
          'DDP gradient all-reduce excluded), ImageNet scale N=1,281,167, '
          'D=128, 8 ranks x 32; from the recorded collectives of '
          f'{args.iters} digits iterations on 2 gloo ranks\n')
    by_name = {r['method']: r for r in table}
    for r in table:
        b = by_name.get(BASE.get(r['method']))
        r['base'] = b['method'] if b else None
        r['extra_over_base_bytes_per_iter'] = (
            r['imagenet_bytes_per_iter'] - b['imagenet_bytes_per_iter']
            if b else None)
    print('| method | collectives / iter | MB / iter / rank | base | '
          'extra over base, MB | vs reference full-bank broadcast '
          f'({REFERENCE_MB:.0f} MB) |')
    print('|---|---|---|---|---|---|')
    for r in table:
        extra = r['extra_over_base_bytes_per_iter']
        print(f"| {r['method']} | {r['calls_per_iter']:.1f} | "
              f"{r['imagenet_bytes_per_iter'] / 1e6:.3f} | "
              f"{r['base'] or '-'} | "
              f"{'-' if extra is None else f'{extra / 1e6:.3f}'} | "
              f"{r['fraction_of_reference'] * 100:.2f} % |")
    print('\nLargest collectives (MB / iter / rank at ImageNet scale):')
    for r in table:
        top = sorted(r['imagenet_by_collective'].items(),
                     key=lambda kv: -kv[1])[:3]
        print(f"  {r['method']}: " + '; '.join(
            f'{k} {v / 1e6:.3f}' for k, v in top))
    for r in table:
        if 'imagenet_bytes_per_refresh' in r:
            print(f"\n{r['method']}: one box refresh "
                  f"{r['imagenet_bytes_per_refresh'] / 1e6:.1f} MB per rank,"
                  f' amortised over {ITERS_PER_INTERVAL} iterations')
    os.makedirs(osp.dirname(args.out), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(dict(command='python benchmarks/bench_comm.py '
                       + ' '.join(sys.argv[1:]),
                       reference_mb=REFERENCE_MB, world=IMAGENET_WORLD,
                       per_rank_batch=32, scale_map=SCALE,
                       table=table), f, indent=2)
    print(f'\nwritten {args.out}')


if __name__ == '__main__':
    main()
