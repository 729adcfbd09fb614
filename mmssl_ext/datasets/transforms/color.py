"""Colour jitter for images held in RGB order."""
from typing import Dict

from mmpretrain.datasets.transforms import ColorJitter

from mmssl_ext.registry import TRANSFORMS


@TRANSFORMS.register_module()
class ColorJitterRGB(ColorJitter):
    """MMPretrain's :class:`ColorJitter` for arrays in **RGB** order.

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
