from .color import ColorJitterRGB
from .contrastive_crop import ContrastiveCrop
from .loading import SafeLoadImageFromFile

__all__ = ['ColorJitterRGB', 'ContrastiveCrop', 'SafeLoadImageFromFile']
