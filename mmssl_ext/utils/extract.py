"""Feature extraction over a whole data set, in data-set order.

One function for every consumer: kNN evaluation, offline clustering
(DeepCluster / ODC / InterCLR initial labels), ContrastiveCrop's box refresh.

Each rank runs the model on its sampler's share of the data; the features are
placed at their ``sample_idx`` rows and all ranks' rows are summed with one
``all_reduce`` (every row is written by at least one rank; rows written twice
- the padding duplicates of ``DefaultSampler(round_up=True)`` - are
averaged by a per-row count, so duplicates do not double a feature).
"""
import sys
from typing import Callable, Optional, Union

import torch
import torch.nn.functional as F
from mmengine import dist
from mmengine.model import is_model_wrapper
from mmengine.utils import ProgressBar


def _ori(model):
    return model.module if is_model_wrapper(model) else model


def pooled_backbone_feature(model, inputs):
    """Global-average-pooled last backbone stage, (B, C)."""
    feats = _ori(model).extract_feat(inputs)
    if isinstance(feats, (tuple, list)):
        feats = feats[-1]
    if feats.dim() == 4:
        feats = F.adaptive_avg_pool2d(feats, 1)
    return feats.flatten(1)


def neck_feature(model, inputs):
    """Output of ``model.neck`` on the backbone output, flattened, (B, D)."""
    m = _ori(model)
    out = m.neck(m.backbone(inputs))
    if isinstance(out, (tuple, list)):
        out = out[-1]
    return out.flatten(1)


_FEATURES = {'backbone': pooled_backbone_feature, 'neck': neck_feature}


@torch.no_grad()
def extract_features(model,
                     dataloader,
                     feature: Union[str, Callable] = 'backbone',
                     progress: Optional[bool] = None,
                     device: Optional[Union[str, torch.device]] = None
                     ) -> torch.Tensor:
    """Extract one feature vector per sample of ``dataloader.dataset``.

    Args:
        model: an mmengine model (wrapped or not) with a data preprocessor.
        dataloader: a loader over the data set with a test pipeline that packs
            ``sample_idx`` (``PackInputs``). Any sampler: order is restored
            from ``sample_idx``.
        feature (str | callable): ``'backbone'`` (pooled last stage),
            ``'neck'``, or ``fn(model, inputs) -> (B, ...)`` tensor.
        progress (bool, optional): show mmengine's progress bar (rank 0);
            default: only when stdout is a terminal (no bars in log files).
        device: where the result lives (default: the model's device).

    Returns:
        Tensor: (len(dataset), ...) features, identical on every rank. The
        model's train/eval mode is restored afterwards.
    """
    from .dist import get_sample_idx
    fn = _FEATURES.get(feature) if isinstance(feature, str) else feature
    if fn is None:
        raise ValueError(f'feature must be one of {sorted(_FEATURES)} or a '
                         f'callable, got {feature!r}')
    ori = _ori(model)
    was_training = ori.training
    ori.eval()
    n = len(dataloader.dataset)
    out = counts = None
    if progress is None:
        progress = sys.stdout.isatty()
    bar = ProgressBar(len(dataloader)) if (
        progress and dist.is_main_process()) else None
    try:
        for data in dataloader:
            data = ori.data_preprocessor(data, False)
            inputs = data['inputs']
            if isinstance(inputs, (list, tuple)):
                inputs = inputs[0]
            feats = fn(model, inputs)
            idx = get_sample_idx(data['data_samples']).to(feats.device)
            if out is None:
                out = feats.new_zeros((n, ) + tuple(feats.shape[1:]))
                counts = feats.new_zeros(n)
            out.index_add_(0, idx, feats.float().to(out.dtype))
            counts.index_add_(0, idx, torch.ones_like(idx, dtype=out.dtype))
            if bar is not None:
                bar.update()
    finally:
        ori.train(was_training)
    if bar is not None:
        print()
    if out is None:
        raise RuntimeError('extract_features: the dataloader yielded no '
                           'batch')
    dist.all_reduce(out)
    dist.all_reduce(counts)
    if (counts == 0).any():
        raise RuntimeError(
            f'extract_features: {int((counts == 0).sum())} of {n} samples '
            'were not visited; use a sampler that covers the whole data set '
            '(e.g. DefaultSampler(shuffle=False)) and drop_last=False')
    out /= counts.view((-1, ) + (1, ) * (out.dim() - 1))
    return out if device is None else out.to(device)
