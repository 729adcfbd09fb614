"""Stop training at the first non-finite (NaN / Inf) loss, naming the
iteration and the loss terms, before the state of that iteration reaches a
checkpoint."""
import math
import re
from typing import Optional, Sequence, Union

import torch
from mmengine import dist
from mmengine.hooks import Hook

from mmssl_ext.registry import HOOKS


def find_nonfinite(outputs: Optional[dict],
                   pattern: str = 'loss') -> list:
    """Names and values of the entries of a ``train_step`` output dict
    (``log_vars``: ``loss`` plus one key per term) whose key matches the
    regular expression ``pattern`` and whose value is not finite.

    Values may be tensors (any shape), lists of tensors, or numbers.
    """
    bad = []
    for key, value in (outputs or {}).items():
        if not re.search(pattern, str(key)):
            continue
        if isinstance(value, torch.Tensor):
            finite = bool(torch.isfinite(value.detach()).all())
            shown = value.detach().float().mean().item() if value.numel() \
                else value
        elif isinstance(value, (list, tuple)) and all(
                isinstance(v, torch.Tensor) for v in value):
            finite = all(bool(torch.isfinite(v.detach()).all())
                         for v in value)
            shown = [v.detach().float().mean().item() for v in value]
        elif isinstance(value, (int, float)):
            finite, shown = math.isfinite(value), value
        else:
            continue
        if not finite:
            bad.append((str(key), shown))
    return bad


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Raise ``FloatingPointError`` at the first iteration whose loss is
    NaN or Inf.

    Model-agnostic: it reads the ``log_vars`` that every mmengine model's
    ``train_step`` returns (``loss`` and one key per term, e.g.
    ``loss_intra``/``loss_inter``), so it works for mmssl_ext's and
    MMPretrain's algorithms alike, with or without a DDP wrapper. The
    message names the iteration (1-based, as in the log and in
    ``iter_<k>.pth``), the epoch, every non-finite loss key and its value.

    What it guarantees: priority ``'VERY_HIGH'`` runs it before every
    other ``after_train_iter`` (``EMAHook``, ``CheckpointHook`` which is
    ``'VERY_LOW'``, ...), so the parameters, EMA weights, memory banks and
    queues of the failing iteration are never written to a checkpoint, and
    no further iteration runs (the next forward would write NaN features
    produced by NaN weights into memories). The optimizer step of the
    failing iteration itself has already been applied in memory; the last
    checkpoint (``<work_dir>/last_checkpoint``) is the one to resume from,
    e.g. with a lower learning rate. Memories should additionally refuse
    non-finite features at ``update`` (NaN features computed *in* the
    failing iteration's forward).

    Mixed precision: only the loss values are checked; infinite fp16
    *gradients*, which ``AmpOptimWrapper``'s dynamic loss scaler handles by
    skipping the step, are left to it.

    Distributed: each rank checks its own losses and the ranks agree with
    one all-reduce of a ``world_size`` flag vector, so all ranks stop at the
    same iteration (none is left waiting in a collective).

    Args:
        pattern (str): regular expression selecting the checked keys of the
            ``train_step`` outputs. Defaults to ``'loss'`` (the keys
            mmengine sums into the total loss, plus the total).
        interval (int): check every ``interval`` iterations. Defaults to 1
            (the loss is already synchronised to the CPU each iteration by
            the logging hooks, so the check costs nothing measurable).
    """

    priority = 'VERY_HIGH'

    def __init__(self, pattern: str = 'loss', interval: int = 1) -> None:
        if not isinstance(interval, int) or interval < 1:
            raise ValueError(f'interval={interval!r} must be an int >= 1')
        try:
            re.compile(pattern)
        except (re.error, TypeError) as e:
            raise ValueError(f'pattern={pattern!r} is not a valid regular '
                             f'expression: {e}') from e
        self.pattern, self.interval = pattern, interval

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: Union[dict, tuple, list, None] = None,
                         outputs: Optional[dict] = None) -> None:
        if not self.every_n_train_iters(runner, self.interval):
            return
        bad = find_nonfinite(self._logged(runner, outputs), self.pattern)
        bad_ranks = self._bad_ranks(bool(bad))
        if not bad_ranks:
            return
        it, ep = runner.iter + 1, runner.epoch + 1
        where = f'at iteration {it} (epoch {ep}, batch_idx {batch_idx})'
        if bad:
            terms = ', '.join(f'{k}={v}' for k, v in bad)
            head = f'Non-finite loss {where}: {terms}'
        else:
            head = (f'Non-finite loss {where} on rank(s) {bad_ranks} '
                    '(see their log for the loss names)')
        last = runner.message_hub.get_info('last_ckpt', None)
        raise FloatingPointError(
            f'{head}. Training stopped before this iteration reached a '
            f'checkpoint; the last checkpoint is {last or "none"}. Lower the '
            'learning rate / check the data, then resume from it.')

    def before_train(self, runner) -> None:
        # MMEngine's RuntimeInfoHook copies every output to the message hub
        # as a Python float each iteration (a host read of each value);
        # when it runs before this hook, the check reads those floats and
        # adds no host synchronisation of its own
        names = [type(h).__name__ for h in runner.hooks]
        self._after_runtime_info = 'RuntimeInfoHook' in names and (
            self not in runner.hooks or names.index('RuntimeInfoHook') <
            runner.hooks.index(self))

    def _logged(self, runner, outputs: Optional[dict]) -> Optional[dict]:
        """``outputs`` with the values MMEngine has already read back to the
        host this iteration (the message hub's ``train/<key>``) in place of
        the tensors."""
        if not outputs or not getattr(self, '_after_runtime_info', False):
            return outputs
        out = {}
        for key, value in outputs.items():
            buf = runner.message_hub.log_scalars.get(f'train/{key}')
            if isinstance(value, torch.Tensor) and value.numel() == 1 and \
                    buf is not None and len(buf.data[0]):
                out[key] = float(buf.current())
            else:
                out[key] = value
        return out

    @staticmethod
    def _bad_ranks(local_bad: bool) -> Sequence[int]:
        # mmengine's all_reduce is a no-op without a process group
        flags = torch.zeros(dist.get_world_size(), dtype=torch.int32)
        flags[dist.get_rank()] = int(local_bad)
        dist.all_reduce(flags, op='sum')
        return flags.nonzero().flatten().tolist()
