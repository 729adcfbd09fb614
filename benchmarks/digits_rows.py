"""The digits protocol the benchmarks and ``tools/demo.py`` share, in one
place: row name -> recipe, each method's base row, the quiet-run settings,
training one row with a validation curve, and the final evaluation on the
test split (kNN, few-label kNN, linear probe) of a trained network, of the
same network at initialisation, or of raw pixels.

Validation vs test: during training the recipe's own val loop (kNN of the
500-image validation split against the other 3,500 training digits) runs
every ``val_interval`` epochs, which gives the curve; the test split (1,000
digits against all 4,000 training digits) is evaluated once, at the end,
and never used to choose anything.
"""
import hashlib
import os
import os.path as osp
import platform
import re
import time

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..'))
_C = 'configs/{}_resnet18-cifar_1xb64-coslr-20e_digits{}.py'

CONFIGS = {
    'mocov2': _C.format('mocov2/mocov2', ''),
    'interclr': _C.format('interclr/interclr-moco', ''),
    'npid': _C.format('invp/invp-npid-baseline', ''),
    'invp': _C.format('invp/invp', ''),
    'npid-fullsoftmax': _C.format('cld/npid-fullsoftmax', ''),
    'cld-npid': _C.format('cld/cld-npid', ''),
    'cld-mocov2': _C.format('cld/cld-mocov2', ''),
    'simclr': _C.format('bsim/simclr', ''),
    'bsim-simclr': _C.format('bsim/bsim-simclr', ''),
    'bsim-mocov2': _C.format('bsim/bsim-mocov2', ''),
    'byol': _C.format('bsim/byol', ''),
    'bsim-byol': _C.format('bsim/bsim-byol', ''),
    'simsiam': _C.format('bsim/simsiam', ''),
    'bsim-simsiam': _C.format('bsim/bsim-simsiam', ''),
    'ccrop-mocov2': _C.format('ccrop/ccrop-mocov2', ''),
    'ccrop-simclr': _C.format('ccrop/ccrop-simclr', ''),
    'simclr-canvas': _C.format('ccrop/simclr', '-canvas'),
    'ccrop-simclr-canvas': _C.format('ccrop/ccrop-simclr', '-canvas'),
}
# method row -> the base algorithm it is compared with (same backbone,
# batch, schedule, augmentation)
BASE = {
    'interclr': 'mocov2',
    'invp': 'npid',
    'cld-npid': 'npid-fullsoftmax',
    'cld-mocov2': 'mocov2',
    'bsim-simclr': 'simclr',
    'bsim-mocov2': 'mocov2',
    'bsim-byol': 'byol',
    'bsim-simsiam': 'simsiam',
    'ccrop-mocov2': 'mocov2',
    'ccrop-simclr': 'simclr',
    'ccrop-simclr-canvas': 'simclr-canvas',
}
# The composition matrix (docs/composition.md): {MoCo v2, SimCLR, BYOL,
# SimSiam} x {InterCLR's inter-image branch, CLD's group branch, BSIM's
# mixture term} as ComposedSSL recipes over the framework's own digits
# recipe, plus one stack; each cell is compared with its framework alone.
_M = 'configs/composition/{}_resnet18-cifar_1xb64-coslr-20e_digits.py'
MATRIX = {
    f'{fw}-{branch}': _M.format(f'{fw}-{branch}')
    for fw in ('mocov2', 'simclr', 'byol', 'simsiam')
    for branch in ('interimage', 'group', 'mixture')
}
MATRIX['mocov2-interimage-group-ccrop'] = _M.format(
    'mocov2-interimage-group-ccrop')
# matrix row -> its framework's row in CONFIGS
MATRIX_BASE = {row: row.split('-')[0] for row in MATRIX}
# matrix rows whose training is the same run as a row of CONFIGS: the
# mixture cells build BSIM's recipes as compositions, with the same
# initial weights and the same losses step by step (checked through the full
# runner; tests/test_models/test_composition/test_equivalence.py holds
# the numerics equal), so the benchmark reuses those rows' results
MATRIX_SAME_AS = {f'{fw}-mixture': f'bsim-{fw}'
                  for fw in ('mocov2', 'simclr', 'byol', 'simsiam')}
# rows evaluated on the canvas digits (their floor / raw-pixel rows differ)
CANVAS_ROWS = ('simclr-canvas', 'ccrop-simclr-canvas')
_PROGRESS_HOOKS = ('ContrastiveCropHook', 'OfflineClusterHook')
# message-hub scalars that are not diagnostics of a method's mechanism
_NOT_DIAG = ('loss', 'lr', 'time', 'data_time', 'momentum')


def load(name):
    """The row's config (a row of CONFIGS or MATRIX) as an mmengine
    ``Config``."""
    from mmengine.config import Config
    path = CONFIGS[name] if name in CONFIGS else MATRIX[name]
    return Config.fromfile(osp.join(ROOT, path))


def quiet(cfg, work_dir, tag, logger_interval=10**6, val_interval=None):
    """Benchmark settings on a loaded recipe, in place: its own work dir and
    experiment name, no checkpoints, no progress bars, warnings-only log;
    validation epochs every ``val_interval`` epochs (None: none)."""
    cfg.work_dir = work_dir
    cfg.experiment_name = f'{tag}_{int(time.time())}'
    cfg.log_level = 'WARNING'
    cfg.train_cfg.val_interval = val_interval or 10**6
    cfg.default_hooks.logger = dict(type='LoggerHook',
                                    interval=logger_interval)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=-1,
                                        save_last=False)
    for h in cfg.get('custom_hooks', []):
        if h['type'] in _PROGRESS_HOOKS:
            h['progress'] = False
    return cfg


def recipe_fingerprint(cfg) -> str:
    """Hash of the resolved recipe (after scaling and overrides), without
    the run-specific settings: two results may be merged only if equal."""
    from mmengine.config import Config
    c = Config(cfg.to_dict())
    for key in ('work_dir', 'experiment_name', 'randomness', 'log_level',
                'default_hooks'):
        c.pop(key, None)
    return hashlib.sha1(c.pretty_text.encode()).hexdigest()[:12]


# ------------------------------------------------ schedule rescaling
# keys holding an epoch count tied to the schedule, wherever they appear in
# the model / custom hooks (scaled by epochs / budget_epochs, at least 1)
EPOCH_KEYS = ('warmup_epochs', 'interval', 'ramp_epochs', 'rampup_epoch',
              'start_epoch',
              'rampup_start_epoch', 'rampup_end_epoch', 'epoch_queue_starts')


def _scale_epochs_in(obj, f, moved, path=''):
    if isinstance(obj, dict):
        for k, v in obj.items():
            p = f'{path}.{k}' if path else k
            if k in EPOCH_KEYS and isinstance(v, int) and not isinstance(
                    v, bool) and v > 0:
                new = max(1, int(round(v * f)))
                if new != v:
                    obj[k] = new
                    moved.append(f'{p}: {v}->{new}')
            else:
                _scale_epochs_in(v, f, moved, p)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            _scale_epochs_in(v, f, moved, f'{path}[{i}]')


def scale_schedule(cfg, epochs: int, budget_epochs: int) -> list:
    """Rescale every schedule-tied knob of ``cfg`` (written for
    ``budget_epochs``) to ``epochs``, in proportion: max_epochs, by-epoch
    LR schedulers, and epoch counts of the model and custom hooks (warm-up,
    ramp-up, refresh intervals). Returns a list of what moved."""
    f = epochs / budget_epochs
    moved = []
    cfg.train_cfg.max_epochs = epochs
    cfg.train_cfg.val_interval = epochs
    for s in cfg.param_scheduler:
        if not s.get('by_epoch', True):
            continue
        for k in ('begin', 'end', 'T_max'):
            if isinstance(s.get(k), int) and s[k] > 0:
                new = max(1, int(round(s[k] * f))) if s[k] < 10**6 else s[k]
                if new != s[k]:
                    moved.append(f"{s['type']}.{k}: {s[k]}->{new}")
                    s[k] = new
    _scale_epochs_in(cfg.model, f, moved, 'model')
    hooks = cfg.get('custom_hooks', [])
    _scale_epochs_in(hooks, f, moved, 'custom_hooks')
    return moved


def prepare(row, seed, epochs, work_dir, budget_epochs=20, overrides=None,
            val_interval=1, curve=True):
    """The row's config, rescaled to ``epochs`` (schedule-tied knobs in
    proportion), with ``overrides`` (``--cfg-options`` style dict) merged,
    quiet, seeded; a validation point before training when ``curve``.
    Returns ``(cfg, knobs moved by the rescaling)``."""
    cfg = load(row)
    moved = scale_schedule(cfg, epochs, budget_epochs)
    if overrides:
        cfg.merge_from_dict(overrides)
    quiet(cfg, osp.join(work_dir, f'{row}_s{seed}'), f'{row}_s{seed}',
          logger_interval=50, val_interval=val_interval if curve else None)
    cfg.randomness = dict(seed=seed, deterministic=False)
    # every row in the channels_last layout: a digits step ~20 % faster on
    # the CPU (benchmarks/bench_overhead.py --layout), both rows of a pair
    cfg.custom_hooks = list(cfg.get('custom_hooks', [])) + [
        dict(type='ChannelsLastHook')
    ] + ([dict(type='ValBeforeTrainHook')] if curve else [])
    return cfg, moved


def base_of(row):
    """The row a method row (of CONFIGS or MATRIX) is compared with, or
    None for a base row."""
    return BASE.get(row) or MATRIX_BASE.get(row)


# the same module under another name in the package's and MMPretrain's
# classes: (method key prefix, base key prefix, transposed)
_ALIASES = (('encoder_k.', 'momentum_encoder.', False),
            ('momentum_encoder.', 'encoder_k.', False),
            ('queue.queue', 'queue', True),  # ring buffer (L, D) / (D, L)
            ('queue', 'queue.queue', True))


def shared_keys(method_state, base_state) -> dict:
    """The state a method shares with its base: ``{method key: (base key,
    transposed)}`` for the same name and shape (backbone, and neck / head /
    memory where the method keeps the base's module) or the same module
    under the other class's name (the momentum encoder, the key queue)."""
    out = {}
    for k, v in method_state.items():
        if k in base_state and base_state[k].shape == v.shape:
            out[k] = (k, False)
            continue
        for mine, theirs, t in _ALIASES:
            if not k.startswith(mine):
                continue
            b = theirs + k[len(mine):]
            bv = base_state.get(b)
            if bv is not None and (bv.t() if t else bv).shape == v.shape:
                out[k] = (b, t)
                break
    return out


def _initial_state(cfg, seed):
    """The state dict of ``cfg``'s model right after construction and
    ``init_weights`` with the global random stream seeded by ``seed``."""
    from mmengine.registry import DefaultScope
    from mmengine.runner import set_random_seed

    from mmssl_ext.registry import MODELS
    set_random_seed(seed)
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope')):
        model = MODELS.build(cfg.model)
    model.init_weights()
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def paired_init(cfg, row, seed, work_dir, base_cfg=None):
    """Make ``row`` start from its base's initial weights: every module it
    shares with its base (``shared_keys``) takes the base's values, its own
    modules keep their own seeded initialisation. Writes the state to
    ``work_dir`` and points ``cfg.load_from`` at it (the runner loads it
    after ``init_weights``, before any hook's ``before_train``); a base row
    loads its own initial state, so the pair's shared modules are
    bit-identical whatever each model's construction draws from the random
    stream. ``base_cfg``: the base row's config, prepared like ``cfg``
    (None for a base row). Returns the number of shared keys (0 for a base
    row).

    The same seed also gives both rows the same data order (MMEngine's
    sampler and worker seeds come from ``randomness.seed``) and, where their
    pipelines are the same, the same augmentation draws."""
    import torch
    base = base_of(row) if base_cfg is not None else None
    state = _initial_state(cfg, seed)
    shared = []
    if base is not None:
        base_state = _initial_state(base_cfg, seed)
        shared = shared_keys(state, base_state)
        for k, (b, t) in shared.items():
            state[k] = base_state[b].t().contiguous() if t else base_state[b]
    os.makedirs(work_dir, exist_ok=True)
    path = osp.join(work_dir, f'init_{row}_s{seed}.pth')
    torch.save(dict(state_dict=state,
                    meta=dict(row=row, base=base, seed=seed,
                              shared_keys=sorted(shared))), path)
    cfg.load_from = path
    return len(shared)


def machine_info() -> dict:
    """Where a result came from: CPU model, cores, torch / oneDNN / MKL
    versions, the intra-op threads. CPU kernels differ between machines
    and move a single digits run by several points."""
    import torch
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    cpu = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    onednn = re.search(r'(?:oneDNN|MKL-DNN) v[\w.]+', torch.__config__.show())
    mkl = 'MKL' if torch.backends.mkl.is_available() else 'no MKL'
    return dict(cpu=cpu, cores=os.cpu_count(), torch=torch.__version__,
                onednn=onednn.group(0) if onednn else 'no oneDNN',
                mkl=mkl, threads=torch.get_num_threads(),
                python=platform.python_version())


def machine_key(info: dict) -> str:
    """The fields of ``machine_info`` that move results: runs of one pair
    are compared only when these match."""
    return f"{info['cpu']} | torch {info['torch']} | {info['onednn']} | " \
        f"{info['threads']} thread(s)"


def curve_of(runner, key='val/knn/top1'):
    """Validation values recorded so far (epoch 0 = before training when a
    ``ValBeforeTrainHook`` ran), as a list."""
    hub = runner.message_hub
    if key not in hub.log_scalars:
        return []
    return [float(v) for v in hub.get_scalar(key).data[0]]


def diagnostics_of(runner) -> dict:
    """Last value of every mechanism scalar the run logged (``train/...``
    message-hub keys other than losses, learning rate and timings)."""
    out = {}
    for key, buf in runner.message_hub.log_scalars.items():
        if not key.startswith('train/'):
            continue
        name = key[len('train/'):]
        if any(t in name for t in _NOT_DIAG):
            continue
        out[name] = float(buf.current())
    return out


def _loader(runner, cfg_loader):
    return runner.build_dataloader(cfg_loader)


def test_features(runner, cfg):
    """Pooled backbone features and labels of the test bank (all training
    digits) and the test split, as the recipe's ``test_cfg`` defines
    them."""
    from mmssl_ext.engine.runners.knn_loop import _labels_of
    from mmssl_ext.utils.extract import extract_features
    bank_loader = _loader(runner, cfg.test_cfg.bank_dataloader)
    query_loader = _loader(runner, cfg.test_dataloader)
    runner.model.eval()
    bank = extract_features(runner.model, bank_loader, progress=False).cpu()
    query = extract_features(runner.model, query_loader,
                             progress=False).cpu()
    return (bank, _labels_of(bank_loader.dataset), query,
            _labels_of(query_loader.dataset))


def raw_pixel_features(cfg):
    """Raw pixels of the test bank and the test split (the flattened 32 x 32
    x 3 uint8 images as floats: the trivial baseline)."""
    import numpy as np
    import torch
    from mmssl_ext.registry import DATASETS
    out = []
    for loader in (cfg.test_cfg.bank_dataloader, cfg.test_dataloader):
        ds_cfg = dict(loader['dataset'])
        ds_cfg['pipeline'] = []
        ds_cfg.setdefault('_scope_', 'mmssl_ext')
        ds = DATASETS.build(ds_cfg)
        x = np.stack([ds.get_data_info(i)['img'] for i in range(len(ds))])
        out += [torch.from_numpy(x.reshape(len(ds), -1)).float(),
                torch.as_tensor(np.asarray(ds.get_gt_labels()))]
    return tuple(out)


def evaluate_features(bank, bank_y, query, query_y, k=200, sigma=0.07,
                      few_per_class=10, few_draws=5):
    """The three probes of the final tables on the test split."""
    from probes import few_label_knn_top1, knn_top1, linear_probe_top1
    few = few_label_knn_top1(bank, bank_y, query, query_y,
                             per_class=few_per_class, draws=few_draws,
                             k=k, sigma=sigma)
    return dict(knn_top1=knn_top1(bank, bank_y, query, query_y, k, sigma),
                few_knn_top1=few['mean'], few_knn_values=few['values'],
                linear_top1=linear_probe_top1(bank, bank_y, query, query_y))
