"""The digits recipes the benchmarks compare, in one place: row name ->
config, each method's base row, and the quiet-run settings every benchmark
applies to a recipe (no checkpoints, no validation epochs, no progress
bars, warnings-only log)."""
import os.path as osp
import time

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..'))
_C = 'configs/{}_resnet18-cifar_1xb64-coslr-20e_digits.py'

CONFIGS = {
    'mocov2': _C.format('mocov2/mocov2'),
    'interclr': _C.format('interclr/interclr-moco'),
    'npid': _C.format('invp/invp-npid-baseline'),
    'invp': _C.format('invp/invp'),
    'npid-fullsoftmax': _C.format('cld/npid-fullsoftmax'),
    'cld-npid': _C.format('cld/cld-npid'),
    'cld-mocov2': _C.format('cld/cld-mocov2'),
    'simclr': _C.format('bsim/simclr'),
    'bsim-simclr': _C.format('bsim/bsim-simclr'),
    'bsim-mocov2': _C.format('bsim/bsim-mocov2'),
    'byol': _C.format('bsim/byol'),
    'bsim-byol': _C.format('bsim/bsim-byol'),
    'simsiam': _C.format('bsim/simsiam'),
    'bsim-simsiam': _C.format('bsim/bsim-simsiam'),
    'ccrop-mocov2': _C.format('ccrop/ccrop-mocov2'),
    'rcrop-simclr': _C.format('ccrop/rcrop-simclr'),
    'ccrop-simclr': _C.format('ccrop/ccrop-simclr'),
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
    'ccrop-simclr': 'rcrop-simclr',
}
_PROGRESS_HOOKS = ('ContrastiveCropHook', 'InterCLRHook',
                   'OfflineClusterHook')


def load(name):
    """The row's config as an mmengine ``Config``."""
    from mmengine.config import Config
    return Config.fromfile(osp.join(ROOT, CONFIGS[name]))


def quiet(cfg, work_dir, tag, logger_interval=10**6):
    """Benchmark settings on a loaded recipe, in place: its own work dir and
    experiment name, no checkpoints, no validation epochs, no progress
    bars, warnings-only log."""
    cfg.work_dir = work_dir
    cfg.experiment_name = f'{tag}_{int(time.time())}'
    cfg.log_level = 'WARNING'
    cfg.train_cfg.val_interval = 10**6
    cfg.default_hooks.logger = dict(type='LoggerHook',
                                    interval=logger_interval)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=-1,
                                        save_last=False)
    for h in cfg.get('custom_hooks', []):
        if h['type'] in _PROGRESS_HOOKS:
            h['progress'] = False
    return cfg
