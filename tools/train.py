"""Train a model (OpenMMLab form).

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
        [--cfg-options k=v ...] [--launcher {none,pytorch,slurm,mpi}]

Multi-process: ``tools/dist_train.sh CONFIG N`` (NCCL on GPUs, gloo on CPU).

Before the Runner is built, the config's arguments of this package's
classes are checked against their constructors: a misspelled key stops with
one line per problem and a "did you mean" (``mmssl_ext.utils.config_check``,
exit status 2), an unwritable work directory is named (exit status 2), and
a data folder the config names but that does not exist stops with its
config key (``data_root``) and the documentation section on the data layout
(``mmssl_ext.utils.data_check``, exit status 2).

Long runs (docs/getting_started.md, "Long runs on a cluster"): SIGTERM /
SIGUSR1 stop every rank at the same iteration with one complete checkpoint
and exit status 75, which tools/slurm_train.sh turns into a requeue
(``mmssl_ext.engine.hooks.preemption_hook``). After a requeue or a torchrun
restart (``SLURM_RESTART_COUNT`` / ``TORCHELASTIC_RESTART_COUNT`` > 0)
``--resume`` is the default. Auto-resume checks the newest checkpoint and
refuses a damaged one, naming the newest intact one (``--resume-fallback``
takes it); resuming with a changed config is refused, naming the keys
(``--allow-config-change``).
"""
import argparse
import os
import os.path as osp
import sys
from copy import deepcopy

from mmengine.config import Config, ConfigDict, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..')))


def parse_args():
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from the given checkpoint, or (no value) from the '
        'latest checkpoint in the work directory')
    parser.add_argument(
        '--resume-fallback', action='store_true',
        help='with auto-resume: if the newest checkpoint is damaged, resume '
        'from the newest intact one (otherwise: stop and name it)')
    parser.add_argument(
        '--allow-config-change', action='store_true',
        help='resume even though the config differs from the checkpoint\'s')
    parser.add_argument('--amp', action='store_true',
                        help='automatic mixed precision training')
    parser.add_argument('--no-validate', action='store_true',
                        help='do not evaluate during training')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the lr by the actual total batch size')
    parser.add_argument('--no-pin-memory', action='store_true')
    parser.add_argument('--no-persistent-workers', action='store_true')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, key=value (e.g. '
        'model.neg_sampling=hard train_cfg.max_epochs=10)')
    parser.add_argument('--launcher', default='none',
                        choices=['none', 'pytorch', 'slurm', 'mpi'])
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def merge_args(cfg, args):
    if args.no_validate:
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    if args.auto_scale_lr:
        cfg.auto_scale_lr.enable = True

    default_loader = ConfigDict(pin_memory=True, persistent_workers=True,
                                collate_fn=dict(type='default_collate'))
    for field in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        if cfg.get(field, None) is None:
            continue
        loader = deepcopy(default_loader)
        loader.update(cfg[field])
        if isinstance(loader.get('collate_fn'), dict):
            # a loader inherited from a `pkg::` base (`mmssl_ext::`,
            # `mmpretrain::`) has its collate_fn tagged with `_scope_`, which
            # MMEngine would pass to the function as an argument
            loader.collate_fn.pop('_scope_', None)
        if args.no_pin_memory:
            loader.pin_memory = False
        if args.no_persistent_workers or loader.get('num_workers', 0) == 0:
            loader.persistent_workers = False
        cfg[field] = loader
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    return cfg


def main():
    # first thing: a preemption signal from now on is recorded, not fatal
    from mmssl_ext.engine.hooks.preemption_hook import (
        EXIT_PREEMPTED, PREEMPT_FILE_ENV, ConfigChangedError,
        TrainingPreempted, install_preemption_handlers)
    install_preemption_handlers()
    args = parse_args()
    import mmssl_ext  # noqa: F401  (before the config: `mmssl_ext::` bases)
    from mmssl_ext.utils.quiet import silence_known_warnings
    silence_known_warnings()  # known-harmless notices, this entry point only
    from mmssl_ext.utils.resume import (DamagedCheckpointError,
                                        check_work_dir_writable,
                                        resolve_auto_resume, restart_count)
    restarts, restart_var = restart_count()
    if restarts and args.resume is None:
        args.resume = 'auto'  # requeued / restarted: continue the run
    cfg = Config.fromfile(args.config)
    cfg = merge_args(cfg, args)
    from mmssl_ext.utils.config_check import (UnknownConfigKeyError,
                                              check_config_arguments)
    try:  # before the Runner logs and builds anything
        check_config_arguments(cfg)
    except UnknownConfigKeyError as e:
        print(f'error: {args.config}: {e}', file=sys.stderr)
        sys.exit(2)
    from mmssl_ext.utils.data_check import MissingDataError, check_data_roots
    try:  # a missing data folder: the key to set, not a deep traceback
        check_data_roots(cfg)
    except MissingDataError as e:
        print(f'error: {args.config}: {e}', file=sys.stderr)
        sys.exit(2)
    from mmssl_ext.utils.checkpoint_compat import (ATOMIC_BACKEND,
                                                   checked_checkpoint_loading)
    from mmssl_ext.utils.launch import (setup_distributed_cpu,
                                        teardown_distributed)
    ckpt_hook = cfg.get('default_hooks', {}).get('checkpoint')
    if ckpt_hook is not None and not ckpt_hook.get('backend_args'):
        # atomic checkpoint writes unless the config chose a backend
        ckpt_hook.backend_args = dict(backend=ATOMIC_BACKEND)
    hooks = cfg.setdefault('default_hooks', ConfigDict())
    if 'preemption' not in hooks:  # configs without our default runtime
        hooks.preemption = dict(type='PreemptionHook')
    if hooks.preemption is not None and args.allow_config_change:
        hooks.preemption.allow_config_change = True
    try:  # before anything trains
        check_work_dir_writable(cfg.work_dir)
        if ckpt_hook is not None and ckpt_hook.get('out_dir'):
            check_work_dir_writable(ckpt_hook.out_dir,
                                    'default_hooks.checkpoint.out_dir')
        if args.resume == 'auto':
            found = resolve_auto_resume(cfg.work_dir, args.resume_fallback)
            if restarts:
                print(f'{restart_var}={restarts}: resuming from {found}'
                      if found else f'{restart_var}={restarts}: no '
                      'checkpoint yet, starting from the beginning',
                      flush=True)
            if found is not None:
                print(f'Auto resumed from the latest checkpoint {found}.',
                      flush=True)
                cfg.resume, cfg.load_from = True, found
    except (PermissionError, DamagedCheckpointError) as e:
        print(f'error: {e}', file=sys.stderr)
        sys.exit(2)
    setup_distributed_cpu(cfg, args.launcher)
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else \
        RUNNERS.build(cfg)
    silence_known_warnings(runner.logger)
    try:
        with checked_checkpoint_loading():  # errors that name the file
            runner.train()
    except TrainingPreempted:
        runner.call_hook('after_run')  # close the logs
        teardown_distributed()
        sys.exit(0 if os.environ.get(PREEMPT_FILE_ENV) else EXIT_PREEMPTED)
    except ConfigChangedError as e:
        print(f'error: {e}', file=sys.stderr)
        sys.exit(2)
    teardown_distributed()


if __name__ == '__main__':
    main()
