"""CLD's projections: an instance and a group projection on the same pooled
feature (Wang, Liu, Yu, CVPR 2021).

* :class:`NormedLinear`: the cosine projection layer of the paper
  ("normalized projection head").
* :class:`CLDNeck`: pools the backbone output and applies the two
  projections (``Linear`` or ``NormedLinear``; optionally after a shared
  ``Linear + ReLU`` layer, the ImageNet "MLP"/"NormMLP" head).
"""
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule

from mmssl_ext.registry import MODELS


PROJ_TYPES = ('linear', 'normed')


@MODELS.register_module()
class NormedLinear(nn.Module):
    """Cosine layer ``y = normalize(x) @ normalize(W, dim=0)``, no bias.

    Every output is the cosine between the input and one weight column, so
    it lies in [-1, 1] whatever the input scale. The weight ``(in, out)`` is
    initialised from U(-1, 1) with every column rescaled to unit norm (the
    authors' ``uniform_(-1, 1).renorm_(2, 1, 1e-5).mul_(1e5)``). The norms
    are floored at ``F.normalize``'s 1e-12.

    Args:
        in_features (int): input dim.
        out_features (int): output dim.
    """

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.empty(in_features, out_features))
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        self.weight.copy_(F.normalize(self.weight.uniform_(-1., 1.), dim=0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=1).mm(F.normalize(self.weight, dim=0))

    def extra_repr(self) -> str:
        return f'in_features={self.in_features}, ' \
               f'out_features={self.out_features}'


@MODELS.register_module()
class CLDNeck(BaseModule):
    """Instance and group projections on the same pooled feature.

    ``forward`` returns ``(inst, group)`` (or ``(inst,)`` with
    ``with_group=False``), **not** normalised: the algorithm L2-normalises
    both, as the authors do.

    Layouts of the official code:

    * CIFAR (``resnet_cifar.py``): ``hid_channels=None``; instance
      ``Linear``/``NormedLinear(512, 128)`` and group one of the same type.
    * ImageNet MoCo v2 (``ResNet.py``, ``--mlp``): ``hid_channels=2048``,
      a shared ``Linear(2048, 2048) + ReLU``, then the two projections
      (``proj_type='linear'`` = "MLP", ``'normed'`` = "NormMLP").

    Args:
        in_channels (int): channels of the backbone output.
        out_channels (int): projection dim. Defaults to 128.
        hid_channels (int, optional): width of the shared ``Linear + ReLU``
            layer; None (default) for no shared layer.
        proj_type (str): ``'linear'`` (default) or ``'normed'``
            (:class:`NormedLinear`), used by both projections.
        with_group (bool): build the group projection. Defaults to True;
            False gives a plain one-projection neck (the NPID baseline).
        with_avg_pool (bool): global-average-pool a 4-d input. Defaults to
            True.
        norm_cfg (dict, optional): a normalisation layer between the shared
            ``Linear`` and its ``ReLU`` (e.g. ``dict(type='BN1d')``, as the
            BN projection heads of the digits recipes); None (default, the
            authors') for none. Needs ``hid_channels``.
        init_cfg (dict, optional): mmengine init config. Defaults to None
            (PyTorch's default init, as in the official code).
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int = 128,
                 hid_channels: Optional[int] = None,
                 proj_type: str = 'linear',
                 with_group: bool = True,
                 with_avg_pool: bool = True,
                 norm_cfg: Optional[dict] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = None):
        super().__init__(init_cfg=init_cfg)
        if norm_cfg is not None and hid_channels is None:
            raise ValueError('CLDNeck: norm_cfg needs hid_channels (it '
                             'normalises the shared hidden layer)')
        if proj_type not in PROJ_TYPES:
            raise ValueError(f'proj_type={proj_type!r} must be one of '
                             f'{PROJ_TYPES}')
        if in_channels < 1 or out_channels < 1 or (hid_channels is not None
                                                   and hid_channels < 1):
            raise ValueError(
                f'in_channels={in_channels}, out_channels={out_channels} '
                f'and hid_channels={hid_channels} must be >= 1')
        self.with_avg_pool = with_avg_pool
        self.with_group = with_group
        if hid_channels is not None:
            layers = [nn.Linear(in_channels, hid_channels)]
            if norm_cfg is not None:
                layers.append(build_norm_layer(norm_cfg, hid_channels)[1])
            self.shared = nn.Sequential(*layers, nn.ReLU(inplace=True))
            in_channels = hid_channels
        else:
            self.shared = nn.Identity()
        proj = nn.Linear if proj_type == 'linear' else NormedLinear
        self.inst_proj = proj(in_channels, out_channels)
        self.group_proj = proj(in_channels,
                               out_channels) if with_group else None

    def forward(self, x: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, ...]:
        """Args:
            x (tuple[Tensor]): backbone outputs; the last one is used.

        Returns:
            tuple[Tensor]: ``(inst, group)`` or ``(inst,)``, each (B, C).
        """
        feat = x[-1] if isinstance(x, (tuple, list)) else x
        if feat.dim() == 4:
            if self.with_avg_pool:
                feat = F.adaptive_avg_pool2d(feat, 1)
            feat = feat.flatten(1)
        feat = self.shared(feat)
        inst = self.inst_proj(feat)
        if self.group_proj is None:
            return (inst, )
        return inst, self.group_proj(feat)
