"""GPU memory per GPU of every ImageNet-1k ResNet-50 recipe at its batch
size, estimated on the CPU before a GPU is rented.

Each recipe is built as the GPU kit builds it (``tools/gpu_check``, check
2: the real bank lengths of 1,281,167 rows and cluster counts, random
cluster state instead of the initial k-means, a stand-in data set serving
already packed 224 px views) and trains two iterations on the CPU at two
small per-GPU batches (``--batches``, default 2 and 4) on fake CUDA
(:mod:`mmssl_ext.testing.fake_cuda`: the CUDA code paths run, e.g. no
value checks) while :class:`mmssl_ext.testing.mem_estimate.PeakMemory`
counts every live tensor storage (Python's cyclic garbage collector run
before each step and paused during it, so the count is reproducible).
The peak is linear in the batch for these models (the activations, the
per-sample logits and negatives), so the two points give
``peak(B) = peak(b2) + (B - b2) * (peak(b2) - peak(b1)) / (b2 - b1)`` at
the recipe's batch B. The state that does not depend on the batch
(weights, momentum encoders, banks, optimizer state) is counted exactly.

Not counted (add them when sizing a GPU): the CUDA context (about 0.3-0.5
GiB, outside PyTorch's allocator), cuDNN / cuBLAS workspaces, the caching
allocator's rounding and fragmentation, NCCL buffers under DDP. The step is
counted in fp32 (MMEngine's ``AmpOptimWrapper`` needs a GPU): for a recipe
trained with AMP (``amp_recipe``) the fp16 activations need less. The GPU
kit prints this estimate beside ``torch.cuda.max_memory_allocated()`` and
their ratio.

Usage::

    python tools/analysis_tools/estimate_gpu_memory.py \\
        --out tools/gpu_check/memory_estimates.json
    python tools/analysis_tools/estimate_gpu_memory.py --only invp,odc
"""
import argparse
import gc
import json
import os.path as osp
import shutil
import sys
import tempfile
import time

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
KIT = osp.join(ROOT, 'tools', 'gpu_check')
GIB = 2**30

#: the ImageNet-1k recipes of this repository (the kit's rows cover
#: their MMPretrain bases too)
RECIPES = [
    'configs/interclr/interclr-moco_resnet50_8xb32-coslr-200e_in1k.py',
    'configs/interclr_r50.py',
    'configs/invp/invp_resnet50_8xb16-coslr-200e_in1k.py',
    'configs/invp/invp_resnet50_8xb16-coslr-800e_in1k.py',
    'configs/cld/cld-mocov2_resnet50_8xb64-coslr-200e_in1k.py',
    'configs/bsim/bsim-simclr_resnet50_8xb32-coslr-200e_in1k.py',
    'configs/bsim/bsim-mocov2_resnet50_8xb32-coslr-200e_in1k.py',
    'configs/bsim/bsim-byol_resnet50_16xb256-coslr-200e_in1k.py',
    'configs/bsim/bsim-simsiam_resnet50_8xb32-coslr-200e_in1k.py',
    'configs/ccrop/ccrop-mocov2_resnet50_8xb32-coslr-100e_in1k.py',
    'configs/npid/npid_resnet50_8xb32-steplr-200e_in1k.py',
    'configs/odc/odc_resnet50_8xb64-steplr-440e_in1k.py',
    'configs/deepcluster/deepcluster-sobel_resnet50_8xb64-steplr-200e_'
    'in1k.py',
]


class _Done(Exception):
    pass


def measure(config: str, batch: int, iters: int = 2, img_size: int = 224,
            work_root: str = None) -> dict:
    """Peak and static tensor bytes of ``iters`` training iterations of
    ``config`` at per-GPU ``batch`` on the CPU."""
    import torch
    from mmengine.hooks import Hook
    from mmengine.runner import Runner
    from mmpretrain.utils import get_ori_model

    if KIT not in sys.path:
        sys.path.insert(0, KIT)
    from gpu_checks.common import IMAGENET_LEN, setup_process
    from gpu_checks.imagenet import _init_cluster_state, build_cfg

    from mmssl_ext.testing.fake_cuda import FakeCuda
    from mmssl_ext.testing.mem_estimate import PeakMemory
    setup_process()
    work_root = work_root or tempfile.mkdtemp(prefix='memest_')
    name = osp.splitext(osp.basename(config))[0]
    cfg, _, views = build_cfg(config, {}, osp.join(work_root, name), name,
                              IMAGENET_LEN, img_size, batch, 'cpu')
    torch.manual_seed(0)
    runner = Runner.from_cfg(cfg)
    model = get_ori_model(runner.model)
    _init_cluster_state(model, IMAGENET_LEN, torch.device('cpu'))
    # on fake CUDA, so that the CUDA code paths run (no value checks, the
    # batch copied to the device, ...)
    fc = FakeCuda()
    fc.to_cuda(runner.model)
    pm = PeakMemory()
    pm.track(list(model.parameters()) + list(model.buffers()))
    static = pm.current
    seen = {}

    class Stop(Hook):
        priority = 'LOWEST'

        def before_train_iter(self, runner, batch_idx, data_batch=None):
            # the previous step's garbage collected now, none during the
            # step: the count does not depend on when Python's cyclic
            # collector happens to run
            gc.collect()
            if runner.iter == 0:
                seen['before'] = pm.current
                pm.reset_peak()

        def after_train_iter(self, runner, batch_idx, data_batch=None,
                             outputs=None):
            if runner.iter + 1 >= iters:
                raise _Done()

    runner.register_hook(Stop())
    t0 = time.perf_counter()
    gc.disable()
    try:
        with fc, pm:
            runner.train()
    except _Done:
        pass
    finally:
        gc.enable()
    out = dict(config=config, batch=batch, views=views,
               static_bytes=static, start_bytes=seen.get('before'),
               peak_bytes=pm.peak, end_bytes=pm.current,
               seconds=round(time.perf_counter() - t0, 1))
    del runner, model
    shutil.rmtree(work_root, ignore_errors=True)
    return out


def estimate(config: str, batches=(2, 4)) -> dict:
    from mmengine.config import Config
    b1, b2 = batches
    m1, m2 = measure(config, b1), measure(config, b2)
    slope = (m2['peak_bytes'] - m1['peak_bytes']) / (b2 - b1)
    cfg = Config.fromfile(osp.join(ROOT, config))
    big = cfg.train_dataloader.batch_size
    peak = m2['peak_bytes'] + (big - b2) * slope
    wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
    return dict(config=config, recipe_batch=big, views=m2['views'],
                # measured in fp32: a recipe trained with AMP keeps its
                # activations in fp16 and needs less
                amp_recipe=wrapper == 'AmpOptimWrapper',
                measured={b1: m1, b2: m2},
                per_sample_mib=round(slope / 2**20, 1),
                static_gib=round(m2['static_bytes'] / GIB, 2),
                state_before_step_gib=round(m2['start_bytes'] / GIB, 2),
                peak_gib=round(peak / GIB, 2))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--only', default='')
    p.add_argument('--batches', default='2,4')
    p.add_argument('--out', default='')
    args = p.parse_args(argv)
    import torch
    torch.set_num_threads(1)
    todo = RECIPES
    if args.only:
        todo = [c for c in todo if any(k in c for k in args.only.split(','))]
    batches = tuple(int(b) for b in args.batches.split(','))
    results = []
    for config in todo:
        r = estimate(config, batches)
        results.append(r)
        print(f'{config}: batch {r["recipe_batch"]}: {r["peak_gib"]} GiB '
              f'peak (state {r["state_before_step_gib"]} GiB, '
              f'{r["per_sample_mib"]} MiB per sample)', flush=True)
    if args.out:
        old = {}
        if osp.exists(args.out):
            with open(args.out) as f:
                old = {r['config']: r for r in json.load(f)['recipes']}
        old.update({r['config']: r for r in results})
        with open(args.out, 'w') as f:
            json.dump(dict(method=__doc__.split('\n\n')[1],
                           batches=list(batches),
                           torch=torch.__version__,
                           recipes=[old[c] for c in RECIPES if c in old]),
                      f, indent=1, default=str)
    return 0


if __name__ == '__main__':
    sys.exit(main())
