"""ODC's projection neck."""
from typing import List, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmengine.model import BaseModule

from mmssl_ext.registry import MODELS


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
