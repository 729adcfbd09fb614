"""DiagnosticsHook: the training set's true labels reach the model's
``diagnostics`` (also through ContrastiveCrop's data-set wrapper), the
scalars are logged every ``interval`` iterations, and a model or data set
that cannot be diagnosed is skipped."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.logging import MessageHub

from mmssl_ext.ccrop.box_store import ContrastiveCropDataset
from mmssl_ext.engine.hooks.diagnostics_hook import (DiagnosticsHook,
                                                     train_set_labels)

INNER = dict(type='SyntheticImageDataset', num_samples=12, num_classes=3,
             img_size=8, seed=0, pipeline=[])


class _Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.seen = []

    def diagnostics(self, labels):
        self.seen.append(labels.clone())
        return dict(share_of_zeros=float((labels == 0).float().mean()))


def _runner(dataset, model, hub):
    return SimpleNamespace(model=model, message_hub=hub, iter=0,
                           train_dataloader=SimpleNamespace(dataset=dataset))


def test_labels_through_the_contrastive_crop_wrapper():
    from mmssl_ext.registry import DATASETS
    inner = DATASETS.build(INNER)
    labels = train_set_labels(inner)
    assert labels.dtype == torch.int64 and len(labels) == 12
    assert labels.tolist() == list(np.asarray(inner.get_gt_labels()))
    wrapped = ContrastiveCropDataset(INNER)
    assert torch.equal(train_set_labels(wrapped), labels)
    # a wrapped data set without labels: no diagnostics, no error
    wrapped.dataset = SimpleNamespace()
    assert train_set_labels(wrapped) is None


def test_hook_logs_every_interval():
    hub = MessageHub.get_instance('test_diagnostics_hook')
    model = _Model()
    runner = _runner(ContrastiveCropDataset(INNER), model, hub)
    hook = DiagnosticsHook(interval=2)
    hook.before_train(runner)
    for i in range(4):
        runner.iter = i
        hook.after_train_iter(runner, i)
    assert len(model.seen) == 2  # iterations 2 and 4
    expected = float((model.seen[0] == 0).float().mean())
    assert hub.get_scalar('train/share_of_zeros').current() == expected
    with pytest.raises(ValueError, match='interval'):
        DiagnosticsHook(interval=0)


def test_model_without_diagnostics_is_skipped():
    hub = MessageHub.get_instance('test_diagnostics_hook_skip')
    runner = _runner(ContrastiveCropDataset(INNER), torch.nn.Linear(1, 1),
                     hub)
    hook = DiagnosticsHook(interval=1)
    hook.before_train(runner)
    hook.after_train_iter(runner, 0)
    assert 'train/share_of_zeros' not in hub.log_scalars
