"""ContrastiveCrop (Peng et al., CVPR 2022) in one place: the transform,
the data-set wrapper with its shared box store, and the box-refresh hook."""
from .box_store import ContrastiveCropDataset, SharedBoxStore
from .hook import ContrastiveCropHook
from .transform import ContrastiveCrop

__all__ = ['ContrastiveCrop', 'ContrastiveCropDataset', 'ContrastiveCropHook',
           'SharedBoxStore']
