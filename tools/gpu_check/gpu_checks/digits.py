"""Check 1: every digits recipe (and its base) trains on the device in fp32
and AMP, keeps all of its state there, resumes with identical state, and
its device checkpoint loads (and trains a step) on the CPU."""
import copy
import math
import os.path as osp
import shutil
from typing import Dict, List

from mmengine.hooks import Hook

from .common import (DIGITS_LEN, diff_states, flatten, hook_tensors,
                     load_config, no_validation, quiet, scale_dataset_sizes,
                     tensors_of_module, to_cpu_tree, unregistered_tensors,
                     walk_dicts)

#: hooks whose epoch knobs are shortened so that every per-epoch action
#: happens inside the short run (box refresh after epoch 1, ...)
_EPOCH_KNOBS = {'ContrastiveCropHook': dict(warmup_epochs=1, interval=1)}


class LossRecorder(Hook):
    """Every ``*loss*`` value of every iteration (and the AMP loss scale)."""
    priority = 'LOWEST'

    def __init__(self):
        self.losses: List[Dict[str, float]] = []
        self.scales: List[float] = []

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        row = {}
        for k, v in (outputs or {}).items():
            if 'loss' in k:
                row[k] = float(v.detach().float().mean()) if hasattr(
                    v, 'detach') else float(v)
        self.losses.append(row)
        scaler = getattr(runner.optim_wrapper, 'loss_scaler', None)
        if scaler is not None and scaler.is_enabled():
            self.scales.append(float(scaler.get_scale()))

    def summary(self) -> dict:
        bad = [(i + 1, k, v) for i, row in enumerate(self.losses)
               for k, v in row.items() if not math.isfinite(v)]
        total = [r.get('loss') for r in self.losses if 'loss' in r]
        out = dict(iterations=len(self.losses), finite=not bad,
                   first_loss=total[0] if total else None,
                   last_loss=total[-1] if total else None,
                   loss_keys=sorted({k for r in self.losses for k in r}))
        if bad:
            out['nonfinite'] = bad[:10]
        if self.scales:
            out['amp_scale_last'] = self.scales[-1]
            out['amp_scale_min'] = min(self.scales)
        return out


def capture(runner) -> dict:
    """Everything a resume must restore, as CPU copies: the model's state
    dict, the optimizer wrapper (AMP loss scaler included), the
    schedulers, the loop counters, ContrastiveCrop's boxes and the cluster
    sampler's labels."""
    from mmpretrain.utils import get_ori_model
    model = get_ori_model(runner.model)
    st = {f'model.{k}': v.detach().cpu().clone()
          for k, v in model.state_dict().items()}
    st.update(flatten(to_cpu_tree(runner.optim_wrapper.state_dict()),
                      'optim.'))
    for i, s in enumerate(runner.param_schedulers or []):
        st.update(flatten(to_cpu_tree(s.state_dict()), f'sched{i}.'))
    st['loop.iter'], st['loop.epoch'] = runner.iter, runner.epoch
    ds = runner.train_dataloader.dataset
    try:
        from mmssl_ext.ccrop.box_store import find_box_dataset
        st['ccrop.boxes'] = find_box_dataset(ds).store.boxes.clone()
    except TypeError:
        pass
    labels = getattr(runner.train_dataloader.sampler, 'labels', None)
    if labels is not None:
        st['sampler.labels'] = labels.clone()
    return st


class ValRecorder(Hook):
    """Metrics of the validation epochs."""
    priority = 'LOWEST'

    def __init__(self):
        self.metrics = []

    def after_val_epoch(self, runner, metrics=None):
        self.metrics.append({k: float(v) for k, v in (metrics or {}).items()})


class Snapshot(Hook):
    """State right before the first iteration (after every other hook's
    ``before_train``: checkpoint loaded, boxes restored, labels pushed)."""
    priority = 'LOWEST'

    def __init__(self):
        self.state = None

    def before_train(self, runner):
        self.state = capture(runner)


def build_cfg(config: str, work_dir: str, name: str, n: int, batch: int,
              epochs: int, workers: int, amp, img_size: int = 32,
              validate: bool = False, n_val: int = 0):
    """The recipe on ``n`` evenly spaced training digits (sizes tied to
    the set length scaled from 4,000), ``epochs`` epochs, a checkpoint
    every epoch. ``validate``: the recipe's kNN validation once, after the
    last epoch, on ``n_val`` evenly spaced test digits (0: all 1,000);
    else none.
    ``img_size`` < 32 (tiny mode) shrinks the images and the crops; CLD's
    group count is capped at the batch."""
    cfg = load_config(config)
    if not validate:
        no_validation(cfg)
    quiet(cfg, work_dir, name)
    scaled = scale_dataset_sizes(cfg.model, DIGITS_LEN, n)

    def groups(d):
        if isinstance(d.get('num_groups'), int) and d['num_groups'] > batch:
            scaled['num_groups'] = [d['num_groups'], batch]
            d['num_groups'] = batch

    walk_dicts(cfg.model, groups)

    def spread(k, total):
        # evenly spaced samples: the stored digits are grouped by class
        return [i * total // k for i in range(k)]

    def subset(d):
        if d.get('type') == 'DigitsDataset' and d.get('split',
                                                      'train') == 'train':
            d['indices'] = spread(n, DIGITS_LEN)
        if d.get('type') == 'DigitsDataset' and d.get('split') == 'test' \
                and n_val:
            d['indices'] = spread(n_val, 1000)
        if img_size != 32:
            if d.get('type') == 'DigitsDataset':
                d['img_size'] = img_size
            if d.get('type') in ('RandomResizedCrop', 'ContrastiveCrop') \
                    and d.get('scale') == 32:
                d['scale'] = img_size

    for key in list(cfg.keys()):
        walk_dicts(cfg[key], subset)
    dl = cfg.train_dataloader
    dl.batch_size = batch
    dl.num_workers = workers
    dl.persistent_workers = bool(workers) and dl.get('persistent_workers',
                                                     False)
    cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=epochs)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=1,
                                        max_keep_ckpts=-1, save_last=True)
    if validate:
        cfg.train_cfg['val_interval'] = epochs
        cfg.default_hooks.checkpoint.update(save_best='knn/top1',
                                            rule='greater')
    for h in cfg.get('custom_hooks', None) or []:
        h.update(_EPOCH_KNOBS.get(h.get('type'), {}))
    if amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
        if amp == 'cpu':  # tiny CPU mode: bfloat16 autocast, no scaler
            cfg.optim_wrapper.type = 'mmssl_ext.GpuCheckCpuAmpOptimWrapper'
    return cfg, scaled


def _state_devices(runner, device) -> dict:
    """Where the trained state lives; problems for anything of the model
    off the run device (and low-precision method state under AMP)."""
    import torch
    from mmpretrain.utils import get_ori_model
    model = get_ori_model(runner.model)
    problems = []
    off = sorted(k for k, v in tensors_of_module(model).items()
                 if v.device.type != device.type)
    if off:
        problems.append(f'{len(off)} model tensors off {device.type}: '
                        f'{off[:8]}')
    low = sorted(k for k, v in model.named_buffers()
                 if v.is_floating_point() and v.dtype != torch.float32
                 and 'running_' not in k)
    if low:
        problems.append(f'method state not in float32: {low[:8]}')
    method_state = {
        k: f'{tuple(v.shape)} {str(v.dtype).replace("torch.", "")} '
        f'{v.device.type}'
        for k, v in model.named_buffers()
        if not any(s in k for s in ('running_', 'num_batches_tracked'))
        and not k.startswith(('encoder_k.', 'target_net.', 'teacher.'))
    }
    by_design = {}
    try:
        from mmssl_ext.ccrop.box_store import find_box_dataset
        b = find_box_dataset(runner.train_dataloader.dataset).store.boxes
        by_design['ContrastiveCropDataset.store.boxes'] = (
            f'{tuple(b.shape)} cpu shared memory (read by data-loader '
            'workers)')
    except TypeError:
        pass
    if getattr(runner.train_dataloader.sampler, 'labels', None) is not None:
        by_design['ClusterSampler.labels'] = 'cpu (the sampler runs there)'
    unreg = unregistered_tensors(model)
    bad_unreg = {k: d for k, d in unreg.items()
                 if not d.startswith(device.type)}
    if bad_unreg:
        problems.append(f'plain tensor attributes off {device.type} (not '
                        f'moved by .to(), not checkpointed): {bad_unreg}')
    return dict(method_state=method_state, cpu_by_design=by_design,
                unregistered_tensors=unreg,
                hook_tensors=hook_tensors(runner), problems=problems)


def _cpu_load_and_step(cfg, ckpt: str, ref: dict, runner) -> dict:
    """Load the device checkpoint into a CPU model (strict), compare it
    with the trained state, then run one training step on the CPU."""
    import torch
    from mmengine.optim import OptimWrapper
    from mmengine.registry import DefaultScope
    from mmengine.runner.checkpoint import load_checkpoint

    from mmssl_ext.registry import MODELS
    with DefaultScope.overwrite_default_scope(
            cfg.get('default_scope', 'mmssl_ext')):
        model = MODELS.build(copy.deepcopy(cfg.model))
    ckpt_dict = load_checkpoint(model, ckpt, map_location='cpu',
                                strict=True, logger='silent')
    got = {f'model.{k}': v for k, v in model.state_dict().items()}
    want = {k: v for k, v in ref.items() if k.startswith('model.')}
    diffs = diff_states(want, got)
    if 'ccrop.boxes' in ref:
        boxes = ckpt_dict.get('contrastive_crop', {}).get('boxes')
        diffs += diff_states({'boxes': ref['ccrop.boxes']},
                             {'boxes': boxes if boxes is not None else
                              'missing'})
    model.train()
    data = next(iter(runner.train_dataloader))
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.0))
    log = model.train_step(data, optim)
    losses = {k: float(v.detach().float().mean()) for k, v in log.items()
              if 'loss' in k}
    problems = [f'CPU load differs: {d}' for d in diffs]
    if not all(math.isfinite(v) for v in losses.values()):
        problems.append(f'CPU step after loading: non-finite {losses}')
    return dict(identical=not diffs, diffs=diffs, cpu_step_losses=losses,
                problems=problems)


def run_row(row: str, config: str, base, amp: bool, device, settings: dict,
            work_root: str) -> dict:
    """One digits item: train, inspect, (CPU load), resume."""
    from mmengine.runner import Runner

    tag = f'{row}-{"amp" if amp else "fp32"}'
    work_dir = osp.join(work_root, tag)
    shutil.rmtree(work_dir, ignore_errors=True)
    amp_kind = device.type if amp else False  # 'cuda' or 'cpu'
    cfg, scaled = build_cfg(config, work_dir, tag, settings['n'],
                            settings['batch'], settings['epochs'],
                            settings['workers'], amp_kind,
                            settings.get('img_size', 32), validate=not amp,
                            n_val=settings.get('n_val', 0))
    cfg2 = copy.deepcopy(cfg)
    no_validation(cfg2)
    out = dict(row=row, config=config, base=base,
               precision=('amp (bfloat16 on the CPU)' if amp_kind == 'cpu'
                          else 'amp') if amp else 'fp32', n=settings['n'],
               batch=settings['batch'], epochs=settings['epochs'],
               scaled_sizes=scaled)
    problems = []
    runner = Runner.from_cfg(cfg)
    rec, val = LossRecorder(), ValRecorder()
    runner.register_hook(rec)
    runner.register_hook(val)
    runner.train()
    out['train'] = rec.summary()
    if not amp:
        # the recipe's kNN monitor (weighted kNN, k=200) on the device
        out['val'] = val.metrics[-1] if val.metrics else None
        if not val.metrics or not all(
                math.isfinite(v) for v in val.metrics[-1].values()):
            problems.append(f'kNN validation: {val.metrics}')
    if not out['train']['finite']:
        problems.append(f'non-finite losses: {out["train"]["nonfinite"]}')
    if amp and out['train'].get('amp_scale_min', 2.**16) < 1.:
        problems.append('AMP loss scale collapsed below 1 (overflow at '
                        'every step)')
    state = _state_devices(runner, device)
    problems += state.pop('problems')
    out['state'] = state
    ref = capture(runner)
    ckpt = osp.join(work_dir, f'epoch_{settings["epochs"]}.pth')
    if not amp:
        cpu = _cpu_load_and_step(cfg, ckpt, ref, runner)
        problems += cpu.pop('problems')
        out['cpu_load'] = cpu
    del runner
    # resume on the device from the last checkpoint; fp32 trains on
    extra = settings['resume_epochs'] if not amp else 0
    cfg2.resume = True
    cfg2.load_from = ckpt
    cfg2.experiment_name = tag + '-resume'
    cfg2.train_cfg.max_epochs = settings['epochs'] + extra
    runner = Runner.from_cfg(cfg2)
    snap, rec2 = Snapshot(), LossRecorder()
    runner.register_hook(snap)
    runner.register_hook(rec2)
    runner.train()
    diffs = diff_states(ref, snap.state)
    out['resume'] = dict(identical=not diffs, diffs=diffs,
                         continued=rec2.summary())
    problems += [f'resumed state differs: {d}' for d in diffs]
    if not out['resume']['continued']['finite']:
        problems.append('non-finite losses after the resume')
    del runner
    shutil.rmtree(work_dir, ignore_errors=True)
    out['problems'] = problems
    return out
