"""ContrastiveCrop overhead: per-iteration time (data loading + train step)
with ContrastiveCrop (boxes active) vs. RandomResizedCrop, same process,
same model and batches of the same images, interleaved rounds, medians; the
box refresh (one pass of the encoder over the training set) is timed
separately.

    OMP_NUM_THREADS=1 python benchmarks/bench_ccrop_overhead.py \
        [--config CONFIG] [--rounds 8] [--iters 4] [--out JSON]

Default config: the digits MoCo v2 ContrastiveCrop recipe (ResNet-18 CIFAR
stem, 16 base channels, batch 64, 32 px). Writes
benchmarks/results/ccrop_overhead.json and prints a Markdown table.
"""
import argparse
import copy
import json
import os
import os.path as osp
import platform
import statistics
import sys
import time

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..'))
sys.path.insert(0, ROOT)
DEFAULT_CFG = osp.join(
    ROOT, 'configs', 'ccrop',
    'ccrop-mocov2_resnet18-cifar_1xb64-coslr-20e_digits.py')


def _replace_type(obj, old, new, drop=()):
    if isinstance(obj, dict):
        out = {k: _replace_type(v, old, new, drop) for k, v in obj.items()
               if not (obj.get('type') == old and k in drop)}
        if out.get('type') == old:
            out['type'] = new
        return out
    if isinstance(obj, (list, tuple)):
        return type(obj)(_replace_type(v, old, new, drop) for v in obj)
    return obj


def _set_key(obj, type_name, key, value):
    if isinstance(obj, dict):
        out = {k: _set_key(v, type_name, key, value) for k, v in obj.items()}
        if out.get('type') == type_name:
            out[key] = value
        return out
    if isinstance(obj, (list, tuple)):
        return type(obj)(_set_key(v, type_name, key, value) for v in obj)
    return obj


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--config', default=DEFAULT_CFG)
    p.add_argument('--rounds', type=int, default=6)
    p.add_argument('--iters', type=int, default=3)
    p.add_argument('--refresh-repeats', type=int, default=1)
    p.add_argument('--num-samples', type=int, default=0,
                   help='use only the first N training images (0: all)')
    p.add_argument('--out', default=osp.join(ROOT, 'benchmarks', 'results',
                                             'ccrop_overhead.json'))
    args = p.parse_args()

    import numpy as np
    import torch
    from mmengine.config import Config
    from mmengine.dataset import default_collate
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope
    from torch.utils.data import DataLoader, Subset

    import mmssl_ext  # noqa: F401
    from mmssl_ext.datasets.box_store import find_box_dataset
    from mmssl_ext.registry import DATASETS, HOOKS, MODELS

    torch.manual_seed(0)
    np.random.seed(0)
    cfg = Config.fromfile(args.config)
    init_default_scope(cfg.get('default_scope', 'mmssl_ext'))
    ds_cfg = cfg.train_dataloader.dataset.to_dict()
    # hue jitter off in BOTH variants: mmcv 2.1's adjust_hue overflows under
    # NumPy 2 for a negative hue factor (environment bug, reported)
    ds_cfg = _set_key(ds_cfg, 'ColorJitter', 'hue', 0.)
    ccrop_ds = find_box_dataset(DATASETS.build(copy.deepcopy(ds_cfg)))
    # the baseline: the same inner data set with RandomResizedCrop
    inner_cfg = _replace_type(ds_cfg['dataset'], 'ContrastiveCrop',
                              'RandomResizedCrop', drop=('alpha', ))
    rcrop_ds = DATASETS.build(inner_cfg)
    n = len(ccrop_ds)
    model = MODELS.build(cfg.model)
    model.train()
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    hook_cfg = [h for h in cfg.custom_hooks
                if h['type'] == 'ContrastiveCropHook'][0]
    hook = HOOKS.build(dict(hook_cfg, progress=False))
    bs = cfg.train_dataloader.batch_size

    # box refresh, timed separately (every image through the encoder)
    refresh = []
    for _ in range(args.refresh_repeats):
        t0 = time.perf_counter()
        boxes = hook.compute_boxes(model, ccrop_ds, hook.batch_size or bs)
        ccrop_ds.store.update(boxes)
        refresh.append(time.perf_counter() - t0)
        print(f'refresh: {refresh[-1]:.2f} s', flush=True)
    model.train()
    ccrop_ds.store.set_active(True)
    area = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))

    sub = list(range(args.num_samples or n))
    g = torch.Generator().manual_seed(0)
    loaders = {
        name: DataLoader(
            Subset(ds, sub), batch_size=bs, shuffle=True, drop_last=True,
            num_workers=0, collate_fn=default_collate, generator=g)
        for name, ds in (('ccrop', ccrop_ds), ('rcrop', rcrop_ds))
    }
    iters = {k: iter(v) for k, v in loaders.items()}

    def next_batch(name):
        try:
            return next(iters[name])
        except StopIteration:
            iters[name] = iter(loaders[name])
            return next(iters[name])

    times = {k: dict(data=[], step=[], total=[]) for k in loaders}
    # warm-up both paths
    for name in loaders:
        model.train_step(next_batch(name), optim)
    for r in range(args.rounds):
        order = ('ccrop', 'rcrop') if r % 2 == 0 else ('rcrop', 'ccrop')
        for name in order:
            for _ in range(args.iters):
                t0 = time.perf_counter()
                batch = next_batch(name)
                t1 = time.perf_counter()
                model.train_step(batch, optim)
                t2 = time.perf_counter()
                times[name]['data'].append(t1 - t0)
                times[name]['step'].append(t2 - t1)
                times[name]['total'].append(t2 - t0)
        print(f'round {r}: ' + ', '.join(
            f"{k} {statistics.median(v['total']):.3f}"
            for k, v in times.items()), flush=True)

    med = {k: {m: statistics.median(v[m]) for m in v}
           for k, v in times.items()}
    result = dict(
        config=osp.relpath(args.config, ROOT),
        batch_size=bs,
        num_train_images=n,
        iterations_per_variant=args.rounds * args.iters,
        torch_threads=torch.get_num_threads(),
        omp_num_threads=os.environ.get('OMP_NUM_THREADS'),
        machine=f'{platform.machine()} {platform.processor() or ""}'.strip(),
        cpu_count=os.cpu_count(),
        median_s=med,
        ratio_total_ccrop_over_rcrop=med['ccrop']['total'] /
        med['rcrop']['total'],
        ratio_data_ccrop_over_rcrop=med['ccrop']['data'] /
        med['rcrop']['data'],
        box_refresh_s=refresh,
        box_refresh_per_image_ms=1e3 * statistics.median(refresh) / n,
        mean_box_area=float(area.mean()),
        note=('ColorJitter hue set to 0 in both variants (mmcv 2.1 '
              'adjust_hue + NumPy 2 overflow); num_workers=0 so the data '
              'time is the transform cost itself; refresh on the randomly '
              'initialised model'),
    )
    os.makedirs(osp.dirname(args.out), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(result, f, indent=2)
    print(f"| variant | data (s/iter) | train step (s/iter) | total (s/iter) |"
          f"\n|---|---|---|---|")
    for k in ('rcrop', 'ccrop'):
        print(f"| {k} | {med[k]['data']:.4f} | {med[k]['step']:.4f} | "
              f"{med[k]['total']:.4f} |")
    print(f"\nratio total ccrop/rcrop = "
          f"{result['ratio_total_ccrop_over_rcrop']:.3f}; data "
          f"{result['ratio_data_ccrop_over_rcrop']:.3f}")
    print(f'box refresh over {n} images: '
          f"{', '.join(f'{t:.2f}' for t in refresh)} s "
          f"({result['box_refresh_per_image_ms']:.2f} ms/image); "
          f'mean box area {result["mean_box_area"]:.3f}')
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
