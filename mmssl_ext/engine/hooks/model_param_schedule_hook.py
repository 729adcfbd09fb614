"""Epoch schedule of numeric model attributes (loss-weight warm-ups)."""
from typing import Dict

from mmengine.hooks import Hook
from mmpretrain.utils import get_ori_model

from mmssl_ext.registry import HOOKS


def _resolve(model, path: str):
    """(owner, attribute name) of the dotted ``path`` under ``model``."""
    *parents, name = path.split('.')
    owner = model
    for p in parents:
        owner = getattr(owner, p, None)
        if owner is None:
            break
    value = getattr(owner, name, None) if owner is not None else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f'ModelParamScheduleHook: params key {path!r} does not name a '
            f'numeric attribute of {type(model).__name__} (got {value!r})')
    return owner, name


@HOOKS.register_module()
class ModelParamScheduleHook(Hook):
    """Hold numeric model attributes at given values during the epochs
    ``[begin, end)`` and at their configured values outside them.

    Before every training epoch each attribute of ``params`` (a dotted path
    under the unwrapped model, e.g. ``'inter_loss_weight'``) is set to the
    scheduled value inside the window and to the value it had when training
    started (the model's configuration) outside it. Nothing is stored in the
    checkpoint: the schedule is a function of the epoch, so a resumed run
    sets the same values. InterCLR's warm-up (the inter-image loss off
    during the first epochs, the intra-image loss at full weight)::

        dict(type='ModelParamScheduleHook', end=warmup_epochs,
             params=dict(intra_loss_weight=1., inter_loss_weight=0.))

    Args:
        params (dict): attribute path -> value inside the window.
        end (int): first epoch (0-based) of the configured values, >= 1.
        begin (int): first epoch (0-based) of the window. Defaults to 0.
    """
    priority = 'NORMAL'

    def __init__(self, params: Dict[str, float], end: int,
                 begin: int = 0) -> None:
        if not isinstance(params, dict) or not params:
            raise ValueError('ModelParamScheduleHook: params must be a '
                             'non-empty dict of attribute -> value')
        for key, value in params.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f'ModelParamScheduleHook: params.{key}='
                                f'{value!r} must be a number')
        if not (isinstance(begin, int) and isinstance(end, int)
                and 0 <= begin < end):
            raise ValueError(f'ModelParamScheduleHook: need ints 0 <= '
                             f'begin < end, got begin={begin!r}, '
                             f'end={end!r}')
        self.params = dict(params)
        self.begin, self.end = begin, end
        self._configured = None

    def before_train(self, runner) -> None:
        model = get_ori_model(runner.model)
        self._configured = {
            path: getattr(*_resolve(model, path))
            for path in self.params
        }

    def before_train_epoch(self, runner) -> None:
        model = get_ori_model(runner.model)
        inside = self.begin <= runner.epoch < self.end
        for path, value in self.params.items():
            owner, name = _resolve(model, path)
            setattr(owner, name,
                    float(value) if inside else self._configured[path])
