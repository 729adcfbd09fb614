"""Contrastive head with an additive cosine margin and/or an ArcFace-style
angular margin on the positive logit (InterCLR, Xie et al., IJCV 2022).

The margins act on the positive similarity ``s = cos(theta)`` only, before
the temperature:

* cosine margin ``m_c``: ``s' = s - m_c``. InterCLR's default for the
  inter-image branch is ``m_c = -0.5``, i.e. ``s' = s + 0.5``: a *negative*
  margin, a looser decision boundary than plain InfoNCE.
* arc margin ``m_a``: ``s' = cos(theta + m_a)``, kept monotonic in ``theta``
  outside the valid range (the usual ArcFace fix-up):

  - ``m_a >= 0``: ``cos(theta + m_a)`` if ``theta < pi - m_a`` else
    ``s - sin(pi - m_a) * m_a``;
  - ``m_a < 0``: ``cos(theta + m_a)`` if ``theta > -m_a`` else
    ``s + sin(m_a) * m_a``.

When both are set they are applied in that order (cosine, then arc), as in
the authors' code. ``None`` switches a margin off.
"""
import math
from typing import List, Optional, Union

import torch
from mmpretrain.models.heads import ContrastiveHead

from mmssl_ext.registry import MODELS


def arc_margin(pos: torch.Tensor, margin: float) -> torch.Tensor:
    """ArcFace-style angular margin ``cos(acos(pos) + margin)`` with the
    monotonic fix-up outside ``[0, pi - margin]`` (see module docstring)."""
    cosine = pos
    sine = torch.sqrt((1.0 - cosine * cosine).clamp(0, 1))
    phi = cosine * math.cos(margin) - sine * math.sin(margin)
    if margin < 0:
        # theta > |m|  <=>  cos(theta) < cos(m)
        return torch.where(cosine < math.cos(margin), phi,
                           cosine + math.sin(margin) * margin)
    # theta < pi - m  <=>  cos(theta) > cos(pi - m)
    return torch.where(cosine > math.cos(math.pi - margin), phi,
                       cosine - math.sin(math.pi - margin) * margin)


def apply_margins(pos: torch.Tensor,
                  cos_margin_value: Optional[float] = None,
                  arc_margin_value: Optional[float] = None) -> torch.Tensor:
    """Apply the cosine then the arc margin to positive similarities."""
    if cos_margin_value is not None:
        pos = pos - cos_margin_value  # additive cosine margin
    if arc_margin_value is not None:
        pos = arc_margin(pos, arc_margin_value)
    return pos


@MODELS.register_module()
class MarginContrastiveHead(ContrastiveHead):
    """:class:`mmpretrain.models.ContrastiveHead` with optional margins on
    the positive logit: ``loss = CE([m(s_pos), s_neg] / temperature, 0)``.

    Args:
        loss (dict): Config of the loss module (usually
            ``dict(type='CrossEntropyLoss')``).
        temperature (float): Softmax temperature, > 0. Defaults to 0.2
            (InterCLR / MoCo v2).
        cos_margin (float, optional): Additive cosine margin ``m``; the
            positive becomes ``s - m``. InterCLR's inter branch uses -0.5.
            ``None`` (default) disables it.
        arc_margin (float, optional): Angular margin in radians; the
            positive becomes ``cos(theta + m)``. ``None`` (default) disables
            it.
        init_cfg (dict or list[dict], optional): Initialization config.
    """

    def __init__(self,
                 loss: Optional[dict] = None,
                 temperature: float = 0.2,
                 cos_margin: Optional[float] = None,
                 arc_margin: Optional[float] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        if loss is None:
            loss = dict(type='CrossEntropyLoss')
        if not isinstance(temperature, (int, float)) or temperature <= 0:
            raise ValueError(
                f'temperature must be > 0, got temperature={temperature!r}')
        for key, val in (('cos_margin', cos_margin), ('arc_margin',
                                                      arc_margin)):
            if val is not None and not isinstance(val, (int, float)):
                raise TypeError(f'{key} must be a number or None, got '
                                f'{key}={val!r}')
        if arc_margin is not None and not -math.pi / 2 <= arc_margin \
                <= math.pi / 2:
            raise ValueError('arc_margin must be within [-pi/2, pi/2] '
                             f'radians, got arc_margin={arc_margin!r}')
        super().__init__(loss=loss, temperature=temperature,
                         init_cfg=init_cfg)
        self.cos_margin = cos_margin
        self.arc_margin = arc_margin

    def loss(self, pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
        """Contrastive loss with margins.

        Args:
            pos (Tensor): (B, 1) positive cosine similarities.
            neg (Tensor): (B, K) negative cosine similarities.

        Returns:
            Tensor: the scalar loss.
        """
        pos = apply_margins(pos, self.cos_margin, self.arc_margin)
        return super().loss(pos, neg)
