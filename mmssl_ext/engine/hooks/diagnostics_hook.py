"""Mechanism diagnostics against the training set's true labels (monitoring
only: the labels never reach a loss)."""
from typing import Optional

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmpretrain.utils import get_ori_model

from mmssl_ext.models.interfaces import Diagnosable
from mmssl_ext.registry import HOOKS


def train_set_labels(dataset) -> Optional[torch.Tensor]:
    """(N,) long ground-truth labels of a training set in ``sample_idx``
    order, or None when it has none (unlabelled images, multi-label)."""
    try:
        labels = np.asarray(dataset.get_gt_labels())
    except (AttributeError, KeyError, TypeError, ValueError):
        return None
    if labels.ndim != 1 or labels.dtype == object or len(labels) == 0 or (
            labels < 0).any():
        return None
    return torch.as_tensor(labels.astype(np.int64))


@HOOKS.register_module()
class DiagnosticsHook(Hook):
    """Log how well a method's mechanism does its job, measured against the
    training set's true labels, every ``interval`` iterations.

    A model that can be diagnosed implements ``diagnostics(true_labels)``
    returning a dict of float scalars (e.g. the NMI and purity of its
    pseudo-labels, the fraction of propagated positives that share the
    anchor's label); the hook logs them as ``train/<name>`` (text log and
    every ``vis_backends``). Diagnostics that need only the batch (CLD's
    group purity, BSIM's mixing coefficients) are returned by the model's
    ``loss`` instead and need no hook.

    The hook does nothing -- with one info line -- for a model without
    ``diagnostics`` or a training set without integer labels. True labels
    are read once per run from the data set (``get_gt_labels``); they are
    handed to ``diagnostics`` and never stored in the model.

    Args:
        interval (int): iterations between two diagnoses. Defaults to 50.
    """
    priority = 'LOW'

    def __init__(self, interval: int = 50) -> None:
        if not isinstance(interval, int) or interval < 1:
            raise ValueError(f'DiagnosticsHook: interval={interval!r} must '
                             'be an int >= 1')
        self.interval = interval
        self._labels = None

    def before_train(self, runner) -> None:
        self._labels = None
        if not isinstance(get_ori_model(runner.model), Diagnosable):
            return
        self._labels = train_set_labels(runner.train_dataloader.dataset)
        if self._labels is None:
            print_log('DiagnosticsHook: the training set has no integer '
                      'labels; no diagnostics', logger='current')

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        if self._labels is None or not self.every_n_train_iters(
                runner, self.interval):
            return
        model = get_ori_model(runner.model)
        with torch.no_grad():
            scalars = model.diagnostics(self._labels)
        for name, value in scalars.items():
            runner.message_hub.update_scalar(f'train/{name}', float(value))
