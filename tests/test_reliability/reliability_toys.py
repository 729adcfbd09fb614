"""Tiny models, data sets and runner configs shared by the reliability
tests (a 4 -> 2 linear model on 16 vectors: a training step takes ~1 ms)."""
import numpy as np
import torch
import torch.nn as nn
from mmengine.evaluator import BaseMetric
from mmengine.logging import MessageHub
from mmengine.model import BaseModel
from torch.utils.data import Dataset


class VectorDataset(Dataset):
    """``n`` fixed random 4-vectors; each item carries its index."""

    def __init__(self, n: int = 16, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, 4, generator=g)
        self.metainfo = dict(classes=('a', 'b'))

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return dict(inputs=self.x[i], data_samples=torch.tensor(i))


class ToyModel(BaseModel):
    """Linear model with a per-sample feature bank (a persistent buffer,
    updated in ``loss`` like our memories) and a loss term ``loss_bad``
    that becomes NaN at the 1-based training iteration ``nan_at``."""

    def __init__(self, n: int = 16, nan_at: int = None):
        super().__init__()
        self.linear = nn.Linear(4, 2)
        self.register_buffer('bank', torch.zeros(n, 2))
        self.nan_at = nan_at

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.linear(inputs)
        if mode == 'loss':
            self.bank[data_samples] = out.detach()
            loss = (out - 1).pow(2).mean()
            it = MessageHub.get_current_instance().get_info('iter', 0) + 1
            nan = self.nan_at is not None and it >= self.nan_at
            # NaN flows into the gradients (loss * nan), like a real blow-up
            bad = loss * (float('nan') if nan else 0.)
            return dict(loss_main=loss, loss_bad=bad,
                        diag=torch.tensor(float('nan')))
        if mode == 'predict':
            return [o for o in out]
        return out


class NumpyMetric(BaseMetric):
    """Returns numpy scalars, as real metrics often do (they end up in the
    message hub and hence in the checkpoint)."""

    def process(self, data_batch, data_samples):
        for s in data_samples:
            self.results.append(np.float32(s.abs().sum()))

    def compute_metrics(self, results):
        return dict(score=np.float64(np.mean(results)),
                    count=np.int64(len(results)))


def runner_cfg(work_dir, max_iters=6, interval=2, nan_at=None, **kw):
    """Kwargs of an iteration-based ``Runner`` with the toy model, SGD with
    momentum, a LR schedule, a seed, validation with numpy metrics and
    checkpoints every ``interval`` iterations."""
    loader = dict(dataset=VectorDataset(), batch_size=4, num_workers=0,
                  sampler=dict(type='DefaultSampler', shuffle=True),
                  collate_fn=dict(type='default_collate'))
    cfg = dict(
        model=ToyModel(nan_at=nan_at),
        work_dir=str(work_dir),
        train_dataloader=loader,
        val_dataloader=dict(loader, sampler=dict(type='DefaultSampler',
                                                 shuffle=False)),
        val_evaluator=[NumpyMetric()],
        val_cfg=dict(type='ValLoop'),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9)),
        param_scheduler=[
            dict(type='LinearLR', start_factor=0.5, by_epoch=False, begin=0,
                 end=2),
            dict(type='CosineAnnealingLR', by_epoch=False, begin=2,
                 end=max_iters, T_max=max_iters - 2)
        ],
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=max_iters,
                       val_interval=interval),
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=1),
            checkpoint=dict(type='CheckpointHook', interval=interval,
                            by_epoch=False)),
        randomness=dict(seed=7),
        default_scope='mmssl_ext',
        log_level='WARNING')
    cfg.update(kw)
    return cfg
