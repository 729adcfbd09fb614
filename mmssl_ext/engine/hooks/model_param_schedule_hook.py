"""Epoch schedule of loss weights (loss-weight warm-ups)."""
from typing import Dict

from mmengine.hooks import Hook
from mmpretrain.utils import get_ori_model

from mmssl_ext.models.interfaces import LossWeighted
from mmssl_ext.registry import HOOKS


@HOOKS.register_module()
class ModelParamScheduleHook(Hook):
    """Hold loss weights at given values during the epochs ``[begin, end)``
    and at their configured values outside them.

    ``params`` maps the log key of a weighted term (``loss_intra``,
    ``loss_inter``, ``loss_base``, ``loss_group``, ``loss_bsim`` ...) to its
    weight inside the window; the model declares its weights through
    :class:`~mmssl_ext.models.interfaces.LossWeighted` (every composition of
    a framework and branches does). Before every training epoch each weight
    is set to the scheduled value inside the window and to the value it had
    when training started (the model's configuration) outside it. Nothing is
    stored in the checkpoint: the schedule is a function of the epoch, so a
    resumed run sets the same values. InterCLR's warm-up (the inter-image
    loss off during the first epochs, the intra-image loss at full
    weight)::

        dict(type='ModelParamScheduleHook', end=warmup_epochs,
             params=dict(loss_intra=1., loss_inter=0.))

    Args:
        params (dict): loss key -> weight inside the window.
        end (int): first epoch (0-based) of the configured values, >= 1.
        begin (int): first epoch (0-based) of the window. Defaults to 0.
    """
    priority = 'NORMAL'

    def __init__(self, params: Dict[str, float], end: int,
                 begin: int = 0) -> None:
        if not isinstance(params, dict) or not params:
            raise ValueError('ModelParamScheduleHook: params must be a '
                             'non-empty dict of loss key -> weight')
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
        if not isinstance(model, LossWeighted):
            raise TypeError(f'ModelParamScheduleHook: {type(model).__name__}'
                            ' declares no loss weights (LossWeighted)')
        weights = model.loss_weights()
        unknown = sorted(set(self.params) - set(weights))
        if unknown:
            raise TypeError(f'ModelParamScheduleHook: params {unknown} name '
                            f'no weighted loss of {type(model).__name__}; '
                            f'its weighted losses: {sorted(weights)}')
        self._configured = {key: weights[key] for key in self.params}

    def before_train_epoch(self, runner) -> None:
        model = get_ori_model(runner.model)
        inside = self.begin <= runner.epoch < self.end
        for key, value in self.params.items():
            model.set_loss_weight(
                key, float(value) if inside else self._configured[key])
