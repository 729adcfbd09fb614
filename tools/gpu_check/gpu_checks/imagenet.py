"""Check 2: the ImageNet-1k ResNet-50 recipes, at their real bank sizes
and cluster counts, on a stand-in data set of the real length: images/s
of the training step (hooks + forward + backward + optimizer + memory
updates) and peak device memory, and each method's ratio to its base."""
import os.path as osp
import shutil
import statistics
import time

from mmengine.hooks import Hook

from .common import (IMAGENET_LEN, load_config, no_validation, quiet,
                     scale_dataset_sizes, sync)


class _Done(Exception):
    """Raised by the timer once the timed iterations are over."""


class _TimerStart(Hook):
    priority = 'HIGHEST'

    def __init__(self, clock):
        self.clock = clock

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        sync(self.clock.device)
        self.clock.t0 = time.perf_counter()


class _TimerEnd(Hook):
    priority = 'LOWEST'

    def __init__(self, clock):
        self.clock = clock

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        sync(self.clock.device)
        c = self.clock
        c.steps.append(time.perf_counter() - c.t0)
        c.last_losses = {k: float(v) for k, v in (outputs or {}).items()
                         if 'loss' in k}
        if len(c.steps) >= c.warmup + c.timed:
            raise _Done()


class _Clock:

    def __init__(self, device, warmup, timed):
        self.device, self.warmup, self.timed = device, warmup, timed
        self.t0, self.steps, self.last_losses = None, [], {}


def count_views(pipeline) -> tuple:
    """(number of views, whether the pipeline yields a list of views)."""
    for t in pipeline or []:
        if t.get('type') in ('MultiView', 'mmpretrain.MultiView'):
            nv = t.get('num_views', 1)
            return (sum(nv) if isinstance(nv, (list, tuple)) else int(nv),
                    True)
    return 1, False


def build_cfg(config: str, overrides: dict, work_dir: str, name: str,
              n: int, img_size: int, batch: int, device_type: str = 'cuda'):
    cfg = load_config(config)
    if overrides:
        cfg.merge_from_dict(overrides)
    if device_type != 'cuda' and cfg.optim_wrapper.get(
            'type') == 'AmpOptimWrapper':
        # MMEngine's AmpOptimWrapper refuses to start without a GPU
        cfg.optim_wrapper.type = 'OptimWrapper'
        cfg.optim_wrapper.pop('loss_scale', None)
    no_validation(cfg)
    quiet(cfg, work_dir, name)
    scaled = scale_dataset_sizes(cfg.model, IMAGENET_LEN, n)
    ds = cfg.train_dataloader.dataset
    inner = ds.dataset if ds.get('type') == 'ContrastiveCropDataset' else ds
    views, multi = count_views(inner.get('pipeline'))
    stand_in = dict(type='mmssl_ext.GpuCheckSyntheticImages', length=n,
                    num_views=views, img_size=img_size, multi_view=multi)
    if inner is ds:
        cfg.train_dataloader.dataset = stand_in
    else:
        ds.dataset = stand_in
    cfg.train_dataloader.update(batch_size=batch, num_workers=0,
                                persistent_workers=False, drop_last=True)
    for h in cfg.get('custom_hooks', None) or []:
        if 'extract_dataloader' in h:
            h.extract_dataloader.update(num_workers=0,
                                        persistent_workers=False)
            h.extract_dataloader['dataset'] = dict(stand_in, num_views=1,
                                                   multi_view=False)
        if 'num_workers' in h:
            h.num_workers = 0
    cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=1)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=-1,
                                        save_last=False)
    return cfg, scaled, views


def _init_cluster_state(model, n: int, device) -> str:
    """Give clustering methods random cluster state (what the initial
    k-means over 1.28M extracted features would produce, minus the hours
    of extraction): banks, labels, centroids."""
    import torch
    import torch.nn.functional as F

    from mmssl_ext.models.memories import ClusterState, find_memories
    found = find_memories(model, ClusterState)
    if not found or found[0][1].is_initialized():
        return ''
    mem = found[0][1]
    k, dim = mem.num_clusters, getattr(mem, 'feat_dim', 128)
    g = torch.Generator(device=device).manual_seed(0)
    feats = F.normalize(
        torch.randn(n, dim, device=device, generator=g), dim=1)
    labels = torch.randint(0, k, (n, ), device=device, generator=g)
    mem.set_clusters(feats, labels)
    return f'random cluster state: {n} x {dim} bank, {k} clusters'


#: the CPU estimates of tools/analysis_tools/estimate_gpu_memory.py
ESTIMATES = osp.join(osp.dirname(osp.dirname(__file__)),
                     'memory_estimates.json')


def memory_estimate(config: str, overrides: dict, batch: int,
                    img_size: int):
    """Estimated peak GiB of ``config`` at per-GPU ``batch`` (224 px, no
    overrides) from the CPU estimate file, or None: the estimate's two
    measured batches extrapolated linearly, as the estimator does for the
    recipe's batch."""
    import json
    if overrides or img_size != 224 or not osp.exists(ESTIMATES):
        return None
    with open(ESTIMATES) as f:
        rows = {r['config']: r for r in json.load(f)['recipes']}
    r = rows.get(config)
    if r is None:
        return None
    (b1, m1), (b2, m2) = sorted((int(b), m['peak_bytes'])
                                for b, m in r['measured'].items())
    peak = m2 + (batch - b2) * (m2 - m1) / (b2 - b1)
    return round(peak / 2**30, 2)


def run_row(row: str, config: str, base, overrides: dict, note: str, device,
            settings: dict, work_root: str) -> dict:
    import torch
    from mmengine.runner import Runner
    from mmpretrain.utils import get_ori_model

    work_dir = osp.join(work_root, f'in1k-{row}')
    shutil.rmtree(work_dir, ignore_errors=True)
    n, batch = settings['n'], settings['batch']
    cfg, scaled, views = build_cfg(config, overrides, work_dir, row, n,
                                   settings['img_size'], batch, device.type)
    t0 = time.perf_counter()
    runner = Runner.from_cfg(cfg)
    model = get_ori_model(runner.model)
    cluster_note = _init_cluster_state(model, n, device)
    build_s = time.perf_counter() - t0
    clock = _Clock(device, settings['warmup'], settings['timed'])
    runner.register_hook(_TimerStart(clock))
    runner.register_hook(_TimerEnd(clock))
    cuda = device.type == 'cuda'
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    try:
        runner.train()
    except _Done:
        pass
    steps = clock.steps[clock.warmup:]
    if len(steps) < clock.timed:
        raise RuntimeError(f'the run stopped after {len(clock.steps)} '
                           'iterations')
    out = dict(row=row, config=config, base=base, note=note,
               overrides={k: repr(v) for k, v in overrides.items()},
               dataset_len=n, batch=batch, views=views,
               img_size=settings['img_size'],
               optim_wrapper=cfg.optim_wrapper.get('type', 'OptimWrapper'),
               timed_iters=len(steps), build_s=round(build_s, 2),
               step_ms_median=round(1e3 * statistics.median(steps), 2),
               images_per_s=round(batch * len(steps) / sum(steps), 1),
               last_losses=clock.last_losses, scaled_sizes=scaled)
    if cluster_note:
        out['cluster_state'] = cluster_note
    if cuda:
        out['peak_mem_gib'] = round(torch.cuda.max_memory_allocated() /
                                    2**30, 2)
    est = memory_estimate(config, overrides, batch, settings['img_size'])
    if est is not None:
        out['est_peak_gib'] = est
        if 'peak_mem_gib' in out:
            out['mem_ratio'] = round(out['peak_mem_gib'] / est, 3)
        print(f'[gpu_check] {row}: peak {out.get("peak_mem_gib", "-")} GiB '
              f'measured, {est} GiB estimated on the CPU, ratio '
              f'{out.get("mem_ratio", "-")}', flush=True)
    problems = [f'non-finite {k}={v}' for k, v in clock.last_losses.items()
                if v != v or v in (float('inf'), float('-inf'))]
    out['problems'] = problems
    del runner, model
    shutil.rmtree(work_dir, ignore_errors=True)
    return out
