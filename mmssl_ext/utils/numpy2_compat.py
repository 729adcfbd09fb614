"""mmcv 2.1's ``adjust_hue`` under NumPy 2.

``mmcv.image.photometric.adjust_hue`` shifts the hue channel with
``h += np.uint8(hue_factor * 255)``. NumPy 1 wrapped a negative value
(-5 -> 251); NumPy 2 raises ``OverflowError: Python integer -5 out of bounds
for uint8``, so every ``ColorJitter(hue=...)`` of MMPretrain (MoCo v2, SimCLR,
BYOL, SimSiam pipelines) crashes in a data-loader worker as soon as a
negative hue is drawn. :func:`adjust_hue` computes the same modular shift
explicitly (identical results to NumPy 1) for both backends. It keeps mmcv's
backend check; ``hue_factor`` needs none (MMPretrain's ``ColorJitter``, the
one caller, clips its hue range to ``[-0.5, 0.5]``).

Scope: nothing is patched at import. This package registers its own
``ColorJitter`` (and ``ColorJitterRGB``) in the ``mmssl_ext`` scope
(:mod:`mmssl_ext.datasets.transforms.color`), which configs with
``default_scope='mmssl_ext'`` get for ``type='ColorJitter'``; only while one
of them transforms an image does :func:`fixed_mmcv_hue` put
:func:`adjust_hue` where MMPretrain's transform looks it up
(``mmcv.adjust_hue``), and the original is back afterwards.
"""
from contextlib import contextmanager

import numpy as np


def _hue_shift(hue_factor: float) -> np.uint8:
    # the uint8 value NumPy 1 produced for np.uint8(hue_factor * 255)
    return np.uint8(int(hue_factor * 255) % 256)


def adjust_hue(img: np.ndarray, hue_factor: float, backend=None):
    """Drop-in for :func:`mmcv.adjust_hue` (same arguments and results)."""
    import cv2
    from mmcv.image import io as mmcv_io
    from PIL import Image

    if backend is None:
        backend = mmcv_io.imread_backend
    if backend not in ['cv2', 'pillow']:
        raise ValueError(f'backend: {backend} is not supported.'
                         f"Supported backends are 'cv2', 'pillow'")
    shift = _hue_shift(hue_factor)
    if backend == 'pillow':
        assert img.dtype == np.uint8, 'Pillow backend only support uint8 type'
        pil_image = Image.fromarray(img[..., ::-1], mode='RGB')
        h, s, v = pil_image.convert('HSV').split()
        np_h = np.array(h, dtype=np.uint8)
        np_h += shift  # uint8 addition wraps around the hue circle
        h = Image.fromarray(np_h, 'L')
        out = Image.merge('HSV', (h, s, v)).convert('RGB')
        return np.array(out, dtype=img.dtype)[..., ::-1]
    hsv = cv2.cvtColor(img.astype(np.uint8), cv2.COLOR_BGR2HSV_FULL)
    h, s, v = cv2.split(hsv)  # uint8 channels
    h += shift
    return cv2.cvtColor(cv2.merge([h, s, v]),
                        cv2.COLOR_HSV2BGR_FULL).astype(img.dtype)


@contextmanager
def fixed_mmcv_hue():
    """Within the block ``mmcv.adjust_hue`` is :func:`adjust_hue` (under
    NumPy 1 too: the results are the same)."""
    import mmcv
    previous = mmcv.adjust_hue
    mmcv.adjust_hue = adjust_hue
    try:
        yield
    finally:
        mmcv.adjust_hue = previous
