
from .loading import SafeLoadImageFromFile  # noqa: F401
