"""ODC: online deep clustering, and its projection neck."""
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from mmpretrain.structures import DataSample

from mmssl_ext.registry import MODELS
from ..memories import ClusterMemory
from .deepcluster import PseudoLabelClassifier


@MODELS.register_module()
class ODC(PseudoLabelClassifier):
    """ODC (Zhan et al., CVPR 2020, `arXiv:2006.10645
    <https://arxiv.org/abs/2006.10645>`_), MMSelfSup's recipe.

    Per iteration: the classifier is trained on the current labels
    ``memory.label_bank[sample_idx]`` with inverse-frequency class weights
    (``reweight_pow`` 0.5), then ``memory.update(sample_idx,
    neck_feature)`` momentum-updates the samples memory and relabels those
    samples against the centroids; the fraction of changed labels is
    returned as ``change_ratio`` (logged, not a loss). Centroid refresh and
    small-cluster handling run in
    :class:`~mmssl_ext.engine.hooks.ClusterMemoryHook`, the initial
    clustering in :class:`~mmssl_ext.engine.hooks.OfflineClusterHook`.

    Args:
        backbone, neck, head: configs (``ODCNeck`` and a
            ``LinearClsHead(num_classes=K, in_channels=256)``).
        memory (dict): ``ClusterMemory`` config (``length`` = N,
            ``feat_dim`` = neck output, ``num_clusters`` = K, ``momentum``
            weights the new feature: 0.5, ``min_cluster`` 20).
        with_sobel (bool): Sobel input. Defaults to False.
        reweight_pow (float, optional): exponent of the inverse-frequency
            class weights. Defaults to 0.5 (ODC).
    """

    memory_kind = ClusterMemory  # updated online

    def __init__(self, *args, reweight_pow: Optional[float] = 0.5,
                 **kwargs):
        super().__init__(*args, reweight_pow=reweight_pow, **kwargs)

    def loss(self, inputs: List[torch.Tensor],
             data_samples: List[DataSample]) -> Dict[str, torch.Tensor]:
        feats, idx, loss = self.classify(inputs, data_samples)
        return dict(loss=loss,
                    **self.memory.update(idx, feats[-1].detach()))


@MODELS.register_module()
class ODCNeck(BaseModule):
    """fc - BN(affine=False) - ReLU - Dropout(0.5) - fc - ReLU (ODC, Zhan et
    al. 2020), on the globally average-pooled last backbone stage.

    The BatchNorm has no affine parameters and running-statistics momentum
    0.001 (PyTorch convention: weight of the new batch statistics).

    Args:
        in_channels (int): backbone channels (2048 for ResNet-50).
        hid_channels (int): hidden width (512).
        out_channels (int): feature dim (256), the memory's ``feat_dim``.
        with_avg_pool (bool): average-pool a 4-D input first.
        norm_cfg (dict): BN type (``'BN1d'``; ``'SyncBN'`` under DDP).
        init_cfg (dict | list[dict], optional): weight init.
    """

    def __init__(self,
                 in_channels: int,
                 hid_channels: int,
                 out_channels: int,
                 with_avg_pool: bool = True,
                 norm_cfg: Optional[dict] = None,
                 dropout: float = 0.5,
                 init_cfg: Optional[Union[dict, List[dict]]] = None):
        super().__init__(init_cfg)
        from mmcv.cnn import build_norm_layer
        norm_cfg = dict(norm_cfg or dict(type='BN1d'))
        norm_cfg.update(momentum=0.001, affine=False)
        self.with_avg_pool = with_avg_pool
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc0 = nn.Linear(in_channels, hid_channels)
        self.bn0 = build_norm_layer(norm_cfg, hid_channels)[1]
        self.relu = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(dropout)
        self.fc1 = nn.Linear(hid_channels, out_channels)

    def forward(self, x: Sequence[torch.Tensor]) -> tuple:
        """``x``: tuple of backbone outputs; uses the last. Returns a 1-tuple
        (B, out_channels)."""
        x = x[-1]
        if self.with_avg_pool and x.dim() == 4:
            x = self.avgpool(x)
        x = x.flatten(1)
        x = self.relu(self.bn0(self.fc0(x)))
        x = self.relu(self.fc1(self.dropout(x)))
        return (x, )
