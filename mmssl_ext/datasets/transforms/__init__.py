from .color import ColorJitter, ColorJitterRGB
from .loading import SafeLoadImageFromFile

__all__ = ['ColorJitter', 'ColorJitterRGB', 'SafeLoadImageFromFile']
