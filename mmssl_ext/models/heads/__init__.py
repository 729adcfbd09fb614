
from .cld_head import CLDGroupHead, CLDNeck, NormedLinear  # noqa: F401
