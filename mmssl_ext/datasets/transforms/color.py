"""Colour jitter: MMPretrain's, with mmcv's hue step fixed for NumPy 2
(:mod:`mmssl_ext.utils.numpy2_compat`), and its variant for RGB arrays."""
from typing import Dict

from mmpretrain.datasets.transforms import ColorJitter as _ColorJitter

from mmssl_ext.registry import TRANSFORMS
from mmssl_ext.utils.numpy2_compat import fixed_mmcv_hue


@TRANSFORMS.register_module()
class ColorJitter(_ColorJitter):
    """MMPretrain's :class:`ColorJitter` (same arguments, same draws) whose
    hue step does not crash under NumPy 2 (mmcv 2.1's ``adjust_hue``
    overflows on a negative hue). Registered in the ``mmssl_ext`` scope
    under MMPretrain's name, so ``type='ColorJitter'`` in this package's
    configs is this transform."""

    def transform(self, results: Dict) -> Dict:
        with fixed_mmcv_hue():
            return super().transform(results)


@TRANSFORMS.register_module()
class ColorJitterRGB(ColorJitter):
    """:class:`ColorJitter` for arrays in **RGB** order.

    MMPretrain's transform (through ``mmcv.adjust_color`` /
    ``adjust_contrast``) computes the gray image with BGR weights, as for
    images decoded from files. Data sets that hold RGB arrays in memory
    (MMPretrain's ``CIFAR10`` / ``CIFAR100``) would then blend towards a gray
    with the red and blue weights swapped (pure red desaturates to 29
    instead of 76). This transform flips the channels to BGR, jitters, and
    flips back; the arguments are ``ColorJitter``'s.
    """

    def transform(self, results: Dict) -> Dict:
        results['img'] = results['img'][..., ::-1]
        results = super().transform(results)
        results['img'] = results['img'][..., ::-1].copy()
        return results
