"""ContrastiveCrop (Peng et al., CVPR 2022): a RandomResizedCrop whose crop
centre is drawn inside a per-image box with a U-shaped Beta distribution.

The transform itself is stateless: it reads the sample's box from
``results['ccrop_box']`` (normalised ``(h0, w0, h1, w1)``), which
:class:`mmssl_ext.datasets.ContrastiveCropDataset` injects from its shared
box store while ContrastiveCrop is active. Without that key the transform is
exactly MMPretrain's :class:`RandomResizedCrop` (same code path, same RNG
draws), which is what the warm-up epochs use.
"""
import math
from typing import Sequence, Tuple, Union

import mmcv
import numpy as np
from mmcv.transforms.utils import cache_randomness
from mmpretrain.datasets.transforms import RandomResizedCrop

from mmssl_ext.registry import TRANSFORMS

#: results key the dataset wrapper fills and the transform reads
CCROP_BOX_KEY = 'ccrop_box'


def check_box(box, key: str = CCROP_BOX_KEY) -> Tuple[float, float, float,
                                                      float]:
    """Validate a normalised ``(h0, w0, h1, w1)`` box and return floats."""
    b = np.asarray(box, dtype=np.float64).reshape(-1)
    if b.shape != (4, ) or not np.all(np.isfinite(b)):
        raise ValueError(f'{key} must be 4 finite numbers (h0, w0, h1, w1), '
                         f'got {box!r}')
    h0, w0, h1, w1 = (float(v) for v in b)
    if not (0. <= h0 <= h1 <= 1. and 0. <= w0 <= w1 <= 1.):
        raise ValueError(f'{key} must satisfy 0 <= h0 <= h1 <= 1 and '
                         f'0 <= w0 <= w1 <= 1 (normalised), got {box!r}')
    return h0, w0, h1, w1


@TRANSFORMS.register_module()
class ContrastiveCrop(RandomResizedCrop):
    """RandomResizedCrop with semantic-aware, centre-suppressed placement.

    Sampling (authors' code, with the crop-range fix of their issue #16):

    1. Up to ``max_attempts`` times draw ``area ~ U(crop_ratio_range)·H·W``
       and ``log(aspect) ~ U(log aspect_ratio_range)``;
       ``w = round(sqrt(area·aspect))``, ``h = round(sqrt(area/aspect))``;
       accept when ``0 < w <= W`` and ``0 < h <= H`` (as RandomResizedCrop).
    2. The box ``(h0, w0, h1, w1)`` gives the range of the crop's top-left
       corner so that the crop *centre* runs between the box edges, both
       ends clipped into ``[0, H - h]`` (resp. ``[0, W - w]``)::

           ch0 = clip(int(H*h0) - h//2, 0, H-h)
           ch1 = clip(int(H*h1) - h//2, 0, H-h)
           cw0 = clip(int(W*w0) - w//2, 0, W-w)
           cw1 = clip(int(W*w1) - w//2, 0, W-w)

    3. ``i = ch0 + int((ch1-ch0)·u)``, then ``j = cw0 + int((cw1-cw0)·v)``
       with ``u, v ~ Beta(alpha, alpha)`` drawn in that order.
       ``alpha < 1`` pushes centres to the box edges; ``alpha = 1`` is uniform.
    4. If no attempt succeeds: RandomResizedCrop's central-crop fallback.
       The crop is resized to ``scale``.

    While ``results`` has no ``'ccrop_box'`` key (boxes not active, warm-up
    epochs) this is exactly :class:`RandomResizedCrop` with the same
    arguments. Note that the full-image box ``(0, 0, 1, 1)`` is *not* the
    same as "inactive": it still draws the corner with Beta(alpha, alpha).

    Args:
        scale (int | tuple): output size, as in ``RandomResizedCrop``.
        alpha (float): Beta(alpha, alpha) parameter, > 0. Defaults to 0.6
            (the paper's value and the authors' ImageNet configs; their
            released small-dataset configs use 0.1, their issue #20).
        crop_ratio_range (tuple): area range. Defaults to ``(0.2, 1.0)``
            (the authors' ContrastiveCrop default).
        **kwargs: the other arguments of ``RandomResizedCrop``, with its
            defaults: ``aspect_ratio_range`` ((3/4, 4/3)), ``max_attempts``
            (attempts before the central crop, 10), ``interpolation``,
            ``backend``.
    """

    def __init__(self,
                 scale: Union[Sequence, int],
                 alpha: float = 0.6,
                 crop_ratio_range: Tuple[float, float] = (0.2, 1.0),
                 **kwargs) -> None:
        if not isinstance(alpha, (int, float)) or not alpha > 0 or \
                not math.isfinite(alpha):
            raise ValueError(
                f'ContrastiveCrop: alpha must be a finite number > 0 (the '
                f'Beta(alpha, alpha) parameter), got alpha={alpha!r}')
        super().__init__(
            scale=scale, crop_ratio_range=crop_ratio_range, **kwargs)
        self.alpha = float(alpha)

    def _central_crop(self, h: int, w: int) -> Tuple[int, int, int, int]:
        """RandomResizedCrop's fallback: the largest centred crop whose
        aspect is inside ``aspect_ratio_range``."""
        in_ratio = float(w) / float(h)
        lo, hi = min(self.aspect_ratio_range), max(self.aspect_ratio_range)
        if in_ratio < lo:
            tw, th = w, int(round(w / lo))
        elif in_ratio > hi:
            th, tw = h, int(round(h * hi))
        else:
            tw, th = w, h
        return (h - th) // 2, (w - tw) // 2, th, tw

    def _offset(self, size: int, crop: int, lo: float, hi: float) -> int:
        """Offset of a ``crop``-long crop along a ``size``-long side whose
        centre runs between the box edges ``lo``, ``hi`` (normalised): the
        clipped corner range, one Beta(alpha, alpha) draw inside it."""
        start, end = (min(max(int(size * e) - crop // 2, 0), size - crop)
                      for e in (lo, hi))
        return start + int((end - start) * np.random.beta(self.alpha,
                                                          self.alpha))

    @cache_randomness
    def box_crop_params(self, img_shape: Sequence[int],
                        box: Sequence[float]) -> Tuple[int, int, int, int]:
        """Sample ``(offset_h, offset_w, target_h, target_w)`` for an image
        of ``img_shape[:2] = (H, W)`` and a normalised box ``(h0, w0, h1,
        w1)`` (global NumPy RNG, as ``RandomResizedCrop``)."""
        H, W = int(img_shape[0]), int(img_shape[1])
        h0, w0, h1, w1 = check_box(box)
        area = H * W
        log_ratio = (math.log(self.aspect_ratio_range[0]),
                     math.log(self.aspect_ratio_range[1]))
        for _ in range(self.max_attempts):
            target_area = np.random.uniform(*self.crop_ratio_range) * area
            aspect = math.exp(np.random.uniform(*log_ratio))
            w = int(round(math.sqrt(target_area * aspect)))
            h = int(round(math.sqrt(target_area / aspect)))
            if 0 < w <= W and 0 < h <= H:
                # the row offset's Beta draw comes first, then the column's
                return (self._offset(H, h, h0, h1),
                        self._offset(W, w, w0, w1), h, w)
        return self._central_crop(H, W)

    def transform(self, results: dict) -> dict:
        box = results.get(CCROP_BOX_KEY, None)
        if box is None:
            # boxes not active: plain RandomResizedCrop, same RNG stream
            return super().transform(results)
        img = results['img']
        i, j, h, w = self.box_crop_params(img.shape, box)
        img = mmcv.imcrop(img, bboxes=np.array([j, i, j + w - 1, i + h - 1]))
        img = mmcv.imresize(img, tuple(self.scale[::-1]),
                            interpolation=self.interpolation,
                            backend=self.backend)
        results.update(img=img, img_shape=img.shape)
        return results

    def __repr__(self):
        return super().__repr__()[:-1] + f', alpha={self.alpha})'
