"""MoCo with a ring-buffer queue: the MoCo v1/v2 instance branch that
InterCLR and CLD build on."""
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmengine.model import ExponentialMovingAverage
from mmpretrain.structures import DataSample

from mmssl_ext.registry import MODELS
from ..memories import FeatureQueue
from .base import SelfSupervisor
from .siamese import SiameseStep, moco_step


@MODELS.register_module()
class RingMoCo(SelfSupervisor):
    """MoCo v1/v2 (MMPretrain's :class:`~mmpretrain.models.MoCo`, built from
    the same parts) with its negatives in a :class:`~mmssl_ext.models.
    memories.FeatureQueue` ring buffer: any global batch size works
    (MMPretrain's queue asserts ``queue_len % batch == 0``, mmselfsup#106)
    and the keys of every rank are enqueued.

    View ``key_view`` is the key, every other view a query (two views: MoCo;
    three: CLD's two queries per key)::

        q_v = normalize(neck(backbone(x_v))[0])
        k = normalize(neck_k(backbone_k(x_key))[0])     # momentum encoder
        L = mean_v CE([q_v . k, q_v . Q^T] / tau, 0)    # through ``head``
        Q <- Q + [k]                                    # after the loss

    The momentum encoder (an :class:`~mmengine.model.
    ExponentialMovingAverage` of ``backbone + neck``) is updated at the start
    of every step; the keys are computed on the batch shuffled across ranks
    (MMPretrain's ``batch_shuffle_ddp``) unless ``shuffle_bn=False``. With
    the same weights, queue (transposed) and random state the loss equals
    MMPretrain's MoCo's bit for bit.

    Args:
        backbone, neck, head: as MoCo (``head``: a ``ContrastiveHead``,
            temperature tau).
        queue_len (int): L. Defaults to 65536.
        feat_dim (int): key dimension. Defaults to 128.
        momentum (float): MMEngine convention, the weight of the NEW
            parameters in the key-encoder update: MoCo's m=0.999 is 0.001.
            Defaults to 0.001.
        key_view (int): index of the key view. Defaults to 1.
        num_views (int or tuple): the accepted numbers of views. Defaults
            to 2.
        shuffle_bn (bool): shuffle the key batch across ranks for BatchNorm.
            Defaults to True.
    """
    framework = 'moco'

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 queue_len: int = 65536,
                 feat_dim: int = 128,
                 momentum: float = 0.001,
                 key_view: int = 1,
                 num_views: Union[int, Sequence[int]] = 2,
                 shuffle_bn: bool = True,
                 **kwargs) -> None:
        if not isinstance(queue_len, int) or queue_len < 1:
            raise ValueError(f'model.queue_len={queue_len!r} must be >= 1')
        if not 0. < momentum <= 1.:
            raise ValueError(f'model.momentum={momentum} must be in (0, 1] '
                             '(MMEngine convention: weight of the new '
                             'weights; MoCo 0.999 -> 0.001)')
        self.num_views = ((num_views, ) if isinstance(num_views, int) else
                          tuple(num_views))
        if key_view not in range(max(self.num_views)):
            raise ValueError(f'model.key_view={key_view!r} must be in '
                             f'[0, {max(self.num_views)})')
        super().__init__(backbone=backbone, neck=neck, head=head, **kwargs)
        self.key_view = key_view
        self.shuffle_bn = bool(shuffle_bn)
        self.encoder_k = ExponentialMovingAverage(
            nn.Sequential(self.backbone, self.neck), momentum)
        self.queue = FeatureQueue(queue_len, feat_dim)

    def step(self, inputs: List[torch.Tensor],
             data_samples: Optional[list] = None) -> SiameseStep:
        """One MoCo step (:func:`~mmssl_ext.models.algorithms.siamese.
        moco_step`): the momentum update, the loss; ``commit`` enqueues the
        keys."""
        views = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        if len(views) not in self.num_views:
            raise ValueError(
                f'{type(self).__name__} needs '
                f'{" or ".join(map(str, self.num_views))} views per sample, '
                f'got {len(views)}: set dict(type=\'MultiView\', num_views='
                f'{self.num_views[0]}) in the train pipeline')
        return moco_step(self, views, self.queue(), self.queue.enqueue,
                         self.key_view, self.shuffle_bn)

    def loss(self, inputs: List[torch.Tensor], data_samples: List[DataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        step = self.step(inputs, data_samples)
        step.commit()
        return dict(loss=step.loss)
