
from .loading import SafeLoadImageFromFile  # noqa: F401
from .contrastive_crop import ContrastiveCrop  # noqa: F401
