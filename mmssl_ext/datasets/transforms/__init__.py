from .contrastive_crop import ContrastiveCrop
from .loading import SafeLoadImageFromFile

__all__ = ['ContrastiveCrop', 'SafeLoadImageFromFile']
