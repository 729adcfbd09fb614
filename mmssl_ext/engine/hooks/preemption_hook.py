"""Long runs on a cluster: stop on a preemption signal at an iteration
boundary agreed by every rank, save one complete checkpoint, and resume it
so that the run continues exactly as if it had never stopped.

Preemption
----------
:func:`install_preemption_handlers` (``tools/train.py`` calls it first
thing; :class:`PreemptionHook` again in ``before_run``) makes SIGTERM and
SIGUSR1 (SLURM's ``--signal=B:USR1@<seconds>`` warning before the time
limit) only *record* the request: a handler that writes nothing cannot
interrupt a checkpoint being written, and a second signal is counted, not
acted on twice. Data-loader workers forked afterwards inherit the handler,
so a signal sent to the whole process group does not kill them under the
main process.

At the end of every training iteration (priority 85: after the method hooks,
before mmengine's ``CheckpointHook``) the ranks all-reduce a one-element
flag (``max``: one rank's signal stops everyone), so all ranks stop after
the same iteration. Rank 0 then writes ``iter_<n>.pth`` with
``Runner.save_checkpoint`` through the checkpoint hook's file backend
(atomic: temporary file, fsync, ``os.replace``) into the checkpoint hook's
``out_dir``, points ``last_checkpoint`` at it (atomically), every rank waits
for the write (barrier), and :class:`TrainingPreempted` is raised;
``tools/train.py`` turns it into exit status :data:`EXIT_PREEMPTED` (75,
``EX_TEMPFAIL``: "try again"), which ``tools/slurm_train.sh`` turns into a
requeue and ``tools/dist_train.sh`` passes on. A signal before the first
iteration stops in ``before_train`` without writing anything (the newest
checkpoint, if any, is already the state).

Exact resume
------------
mmengine's checkpoint holds the model (every memory bank, label bank,
queue and counter of this package is a buffer), the optimizer, the
parameter schedulers, the message hub and the loop counters. This hook adds
``checkpoint['train_state']``: the position inside the epoch
(``epoch_batches_done``), the random states (Python, NumPy, torch CPU and
CUDA) of **every** rank and, with several ranks, every rank's BatchNorm
running statistics (per rank under DDP without buffer broadcasts),
all-gathered just before a checkpoint is written
(a preemption save, or a save that ``CheckpointHook`` will make at this
iteration / epoch end). On resume (``Runner.resume`` calls
``after_load_checkpoint``) the first epoch skips the batches already
trained -- without loading them, through a wrapper around the batch
sampler's sampler -- and restores each rank's random states right after the
epoch's data-loader iterator is created, before the first batch is drawn:
the following batches, their augmentations and every later step are those
of the uninterrupted run, bit for bit (``tests/test_reliability/
test_preemption.py``: InterCLR and InvP digits recipes, 1 and 2 processes).
Limits: data-loader *worker* processes keep their own random streams, which
are not saved, so with ``num_workers > 0`` the augmentations after the
resume differ from the uninterrupted run's (the samples, their order and
all state are still exact); ``IterBasedTrainLoop`` keeps mmengine's own
resume (it re-reads the trained batches).

Requeue with a changed config
-----------------------------
When resuming, the config saved in the checkpoint is compared with the
current one (``resume``, ``load_from`` and ``experiment_name`` excepted)
and a difference stops the run with :class:`ConfigChangedError` naming the
differing keys, unless ``allow_config_change=True`` (``tools/train.py
--allow-config-change``).
"""
import os
import os.path as osp
import random
import signal
import time
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine import dist
from mmengine.hooks import CheckpointHook, Hook
from mmengine.runner import EpochBasedTrainLoop

from mmssl_ext.registry import HOOKS

#: exit status of a preempted run: sysexits.h ``EX_TEMPFAIL`` ("temporary
#: failure, the user is invited to retry"); the launchers requeue on it
EXIT_PREEMPTED = 75

#: environment variable: when set (``tools/dist_train.sh`` does), a
#: preempted rank writes the checkpoint path into this file and exits 0,
#: so that torchrun does not count the stop as a failure to restart
PREEMPT_FILE_ENV = 'MMSSL_PREEMPT_FILE'

DEFAULT_SIGNALS = ('SIGTERM', 'SIGUSR1')

# signals received so far in this process: [(name, time.monotonic()), ...]
_RECEIVED: List[tuple] = []
_PREVIOUS: Dict[int, Any] = {}


def _handler(signum, frame):  # noqa: ARG001 - signal handler signature
    # record only: no I/O, no logging (the process may be inside a write)
    _RECEIVED.append((signal.Signals(signum).name, time.monotonic()))


def install_preemption_handlers(signals: Sequence[str] = DEFAULT_SIGNALS
                                ) -> bool:
    """Make ``signals`` (names such as ``'SIGTERM'``) set the preemption
    request instead of ending the process. Idempotent; a no-op (returns
    False) outside the main thread, where Python cannot install handlers."""
    import threading
    if threading.current_thread() is not threading.main_thread():
        return False
    for name in signals:
        sig = getattr(signal, name, None)
        if sig is None:  # e.g. SIGUSR1 on Windows
            continue
        current = signal.getsignal(sig)
        if current is _handler:
            continue
        _PREVIOUS[sig] = current
        signal.signal(sig, _handler)
    return True


def uninstall_preemption_handlers() -> None:
    """Restore the handlers that :func:`install_preemption_handlers`
    replaced and forget the received signals."""
    import threading
    if threading.current_thread() is threading.main_thread():
        for sig, previous in list(_PREVIOUS.items()):
            if signal.getsignal(sig) is _handler:
                signal.signal(sig, previous if previous is not None else
                              signal.SIG_DFL)
    _PREVIOUS.clear()
    _RECEIVED.clear()


def preemption_requested() -> Optional[str]:
    """Name of the first preemption signal this process received, or None.
    """
    return _RECEIVED[0][0] if _RECEIVED else None


class TrainingPreempted(Exception):
    """Training stopped on a preemption signal (every rank raises it).

    Attributes:
        checkpoint (str or None): the checkpoint written on stopping (None
            when the signal came before the first iteration).
        iteration (int): iterations completed.
        signal_name (str): the first signal received.
        seconds (float): from that signal to the end of the checkpoint write.
    """

    def __init__(self, checkpoint: Optional[str], iteration: int,
                 signal_name: str, seconds: float):
        self.checkpoint, self.iteration = checkpoint, iteration
        self.signal_name, self.seconds = signal_name, seconds
        where = (f'checkpoint {checkpoint}' if checkpoint else
                 'before the first iteration, nothing new to save')
        super().__init__(
            f'{signal_name} received: stopped after iteration {iteration} '
            f'({where}, {seconds:.1f} s after the signal); rerun with '
            '`--resume` (tools/slurm_train.sh requeues, and `--resume` is '
            'the default after a requeue or an elastic restart)')


class ConfigChangedError(RuntimeError):
    """Resuming with a config that differs from the checkpoint's."""


def rng_state() -> dict:
    """This process's random states: Python, NumPy, torch CPU (and CUDA
    when initialised)."""
    state = dict(python=random.getstate(), numpy=np.random.get_state(),
                 torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` returned."""
    random.setstate(state['python'])
    np.random.set_state(state['numpy'])
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


def _flatten(value, prefix: str = '') -> Dict[str, Any]:
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, (list, tuple)):
        items = ((str(i), v) for i, v in enumerate(value))
    else:
        return {prefix: value}
    out = {}
    empty = True
    for k, v in items:
        empty = False
        out.update(_flatten(v, f'{prefix}.{k}' if prefix else str(k)))
    if empty:
        out[prefix] = type(value)()
    return out


def config_differences(saved_text: str, cfg,
                       ignore: Sequence[str] = ('resume', 'load_from',
                                                'experiment_name')
                       ) -> List[str]:
    """Dotted keys whose values differ between the config text saved in a
    checkpoint (``meta['cfg']``) and ``cfg`` (a ``Config``); both are
    normalised through mmengine's config text. Keys in ``ignore`` (and
    below them) and keys ending in ``allow_config_change`` are skipped."""
    from mmengine.config import Config
    old = _flatten(Config.fromstring(saved_text, '.py').to_dict())
    new = _flatten(Config.fromstring(cfg.pretty_text, '.py').to_dict())
    diff = []
    for key in sorted(set(old) | set(new)):
        if any(key == i or key.startswith(i + '.') for i in ignore) or \
                key.endswith('allow_config_change'):
            continue
        if key not in old:
            diff.append(f'{key} (new: {new[key]!r})')
        elif key not in new:
            diff.append(f'{key} (removed, was {old[key]!r})')
        elif old[key] != new[key]:
            diff.append(f'{key} ({old[key]!r} -> {new[key]!r})')
    return diff


def _bn_buffers(runner) -> Dict[str, torch.Tensor]:
    from mmengine.model import is_model_wrapper
    from torch.nn.modules.batchnorm import _BatchNorm
    model = runner.model.module if is_model_wrapper(runner.model) else \
        runner.model
    out = {}
    for name, m in model.named_modules():
        if isinstance(m, _BatchNorm):
            for b, t in m.named_buffers(recurse=False):
                if t is not None:
                    out[f'{name}.{b}'] = t.detach().cpu().clone()
    return out


def _load_bn_buffers(runner, buffers: Dict[str, torch.Tensor]) -> None:
    from mmengine.model import is_model_wrapper
    model = runner.model.module if is_model_wrapper(runner.model) else \
        runner.model
    own = dict(model.named_buffers())
    with torch.no_grad():
        for name, t in buffers.items():
            if name in own:
                own[name].copy_(t.to(own[name].device))


class _ResumeSampler:
    """Wraps a sampler for the first epoch after a mid-epoch resume: skips
    the first ``skip`` indices without loading them and calls ``on_start``
    when iteration begins (after the data-loader iterator is created)."""

    def __init__(self, sampler, skip: int, on_start=None):
        self.sampler, self.skip, self.on_start = sampler, skip, on_start

    def __iter__(self):
        if self.on_start is not None:
            self.on_start()
            self.on_start = None
        it = iter(self.sampler)
        for _ in range(self.skip):
            if next(it, StopIteration) is StopIteration:
                return
        yield from it

    def __len__(self):
        return max(len(self.sampler) - self.skip, 0)

    def __getattr__(self, name):  # set_epoch, dataset, ...
        return getattr(self.sampler, name)


@HOOKS.register_module()
class PreemptionHook(Hook):
    """Preemption-safe stopping and exact resume (see the module docstring).

    Args:
        signals (Sequence[str]): signal names that request a stop.
            Defaults to ``('SIGTERM', 'SIGUSR1')``.
        allow_config_change (bool): resume even if the config differs from
            the checkpoint's (otherwise :class:`ConfigChangedError` names the
            differing keys). Defaults to False.
    """

    # after the method hooks (NORMAL ... LOW: their iteration work is part
    # of the saved state), before CheckpointHook (VERY_LOW, 90)
    priority = 85

    def __init__(self, signals: Sequence[str] = DEFAULT_SIGNALS,
                 allow_config_change: bool = False):
        for name in signals:
            if not isinstance(name, str) or not name.startswith('SIG') or \
                    not hasattr(signal.Signals, name):
                raise ValueError(f'PreemptionHook: signals: {name!r} is not '
                                 'a signal name such as "SIGTERM"')
        self.signals = tuple(signals)
        self.allow_config_change = allow_config_change
        self._gathered: Optional[list] = None
        self._resume_state: Optional[dict] = None
        self._epoch_start_iter = 0
        self._wrapped = None  # (batch_sampler, original sampler)

    # ------------------------------------------------------------ helpers
    @staticmethod
    def _checkpoint_hook(runner) -> Optional[CheckpointHook]:
        for hook in runner.hooks:
            if isinstance(hook, CheckpointHook):
                return hook
        return None

    def _agree(self) -> bool:
        """Whether any rank received a stop signal (a collective)."""
        local = preemption_requested() is not None
        if dist.get_world_size() == 1:
            return local
        flag = torch.tensor([1 if local else 0], dtype=torch.int32)
        dist.all_reduce(flag, op='max')
        return bool(flag.item())

    def _gather_rng(self, runner) -> None:
        """Every rank's random state (and, with several ranks, its
        BatchNorm running statistics, which DDP without buffer broadcasts
        keeps per rank and the checkpoint holds rank 0's of) for the
        checkpoint about to be saved (a collective: called where every rank
        knows a save follows)."""
        state = dict(rng=rng_state())
        if dist.get_world_size() == 1:
            self._gathered = [state]
            return
        state['bn'] = _bn_buffers(runner)
        self._gathered = dist.all_gather_object(state)

    def _stop(self, runner, save: bool) -> None:
        # this rank may have received nothing: another rank's signal
        name, t0 = _RECEIVED[0] if _RECEIVED else (
            'a signal on another rank', time.monotonic())
        path = None
        if save:
            self._gather_rng(runner)
            ckpt_hook = self._checkpoint_hook(runner)
            out_dir = getattr(ckpt_hook, 'out_dir', None) or runner.work_dir
            backend_args = getattr(ckpt_hook, 'backend_args', None)
            if backend_args is None:
                from mmssl_ext.utils.checkpoint_compat import ATOMIC_BACKEND
                backend_args = dict(backend=ATOMIC_BACKEND)
            filename = f'iter_{runner.iter + 1}.pth'
            path = osp.join(out_dir, filename)
            runner.logger.info(
                f'{name} received: stopping after iteration '
                f'{runner.iter + 1}, all ranks; saving {path}')
            runner.save_checkpoint(out_dir, filename, by_epoch=False,
                                   backend_args=backend_args,
                                   meta=dict(preempted=name))
            if dist.is_main_process():
                from mmssl_ext.utils.checkpoint_compat import \
                    atomic_write_bytes
                atomic_write_bytes(path.encode(),
                                   osp.join(runner.work_dir,
                                            'last_checkpoint'))
            runner.message_hub.update_info('last_ckpt', path)
            dist.barrier()  # nobody exits while rank 0 is still writing
        seconds = time.monotonic() - t0
        err = TrainingPreempted(path, runner.iter + (1 if save else 0), name,
                                seconds)
        runner.logger.warning(str(err) + (
            f' [{len(_RECEIVED)} signals received]'
            if len(_RECEIVED) > 1 else ''))
        self._report(path)
        _RECEIVED.clear()  # handled; the handlers stay until the exit
        raise err

    @staticmethod
    def _report(path: Optional[str]) -> None:
        report = os.environ.get(PREEMPT_FILE_ENV)
        if report:
            from mmssl_ext.utils.checkpoint_compat import atomic_write_bytes
            atomic_write_bytes((path or '').encode() + b'\n', report)

    # ------------------------------------------------------- hook methods
    def before_run(self, runner) -> None:
        install_preemption_handlers(self.signals)

    def after_run(self, runner) -> None:
        self._unwrap()

    def before_train(self, runner) -> None:
        # a signal before the first iteration: stop, nothing new to save
        if self._agree():
            self._stop(runner, save=False)

    def before_train_epoch(self, runner) -> None:
        self._epoch_start_iter = runner.iter
        state, self._resume_state = self._resume_state, None
        if state is None or not isinstance(runner.train_loop,
                                           EpochBasedTrainLoop):
            return
        loader = runner.train_loop.dataloader
        done = int(state.get('epoch_batches_done', 0))
        rngs = state.get('rng') or []
        world, rank = dist.get_world_size(), dist.get_rank()
        restore = None
        if len(rngs) == world:
            def restore(s=rngs[rank]):
                set_rng_state(s)
        else:
            runner.logger.warning(
                f'The checkpoint holds the random states of {len(rngs)} '
                f'rank(s), this run has {world}: the random draws after the '
                'resume differ from an uninterrupted run.')
        bns = state.get('bn') or []
        if len(bns) == world and world > 1:  # this rank's running stats
            _load_bn_buffers(runner, bns[rank])
        batch_sampler = getattr(loader, 'batch_sampler', None)
        if done == 0 and restore is None:
            return
        if batch_sampler is None or not hasattr(batch_sampler, 'sampler'):
            runner.logger.warning(
                'PreemptionHook: the train dataloader has no batch sampler '
                'with a `sampler`; the resumed epoch starts from its first '
                'batch.')
            return
        original = batch_sampler.sampler
        batch_size = getattr(batch_sampler, 'batch_size', None) or 1
        batch_sampler.sampler = _ResumeSampler(original, done * batch_size,
                                               restore)
        self._wrapped = (batch_sampler, original)
        self._epoch_start_iter = runner.iter - done
        if done:
            runner.logger.info(
                f'Resuming inside epoch {runner.epoch + 1}: skipping the '
                f'{done} batches already trained (not loaded).')

    def _unwrap(self) -> None:
        if self._wrapped is not None:
            batch_sampler, original = self._wrapped
            batch_sampler.sampler = original
            self._wrapped = None

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        if self._agree():
            self._stop(runner, save=True)
        ckpt_hook = self._checkpoint_hook(runner)
        if ckpt_hook is not None and not ckpt_hook.by_epoch and (
                ckpt_hook.every_n_train_iters(runner, ckpt_hook.interval,
                                              ckpt_hook.save_begin)
                or (ckpt_hook.save_last
                    and ckpt_hook.is_last_train_iter(runner))):
            self._gather_rng(runner)  # CheckpointHook saves now

    def after_train_epoch(self, runner) -> None:
        self._unwrap()
        # saves from here to the next epoch (this epoch's checkpoint, and
        # its re-save by CheckpointHook's ``save_best`` after validation,
        # whose meta epoch equals ``runner.epoch``) hold a complete epoch
        self._epoch_start_iter = runner.iter
        ckpt_hook = self._checkpoint_hook(runner)
        if ckpt_hook is not None and ckpt_hook.by_epoch and (
                ckpt_hook.every_n_epochs(runner, ckpt_hook.interval,
                                         ckpt_hook.save_begin)
                or (ckpt_hook.save_last
                    and ckpt_hook.is_last_train_epoch(runner))):
            self._gather_rng(runner)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        meta = checkpoint['meta']
        if meta.get('epoch') != runner.epoch:  # an end-of-epoch save
            done = 0
        else:
            done = int(meta['iter']) - self._epoch_start_iter
        ranks = self._gathered if self._gathered is not None else \
            [dict(rng=rng_state())]  # an unannounced save (best): rank 0's
        checkpoint['train_state'] = dict(
            epoch_batches_done=done, rng=[r['rng'] for r in ranks],
            bn=[r['bn'] for r in ranks if 'bn' in r])
        self._gathered = None

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if not getattr(runner, '_resume', False):
            return  # load_from: weights only, not a resume
        saved = checkpoint.get('meta', {}).get('cfg')
        if saved and not self.allow_config_change:
            diff = config_differences(saved, runner.cfg)
            if diff:
                raise ConfigChangedError(
                    'Refusing to resume: the config differs from the one '
                    'the checkpoint was trained with, in '
                    f'{len(diff)} key(s): ' + '; '.join(diff) +
                    '. Restore these settings, or resume on purpose with '
                    '`tools/train.py --allow-config-change` (hook argument '
                    '`default_hooks.preemption.allow_config_change=True`).')
        self._resume_state = checkpoint.get('train_state')
