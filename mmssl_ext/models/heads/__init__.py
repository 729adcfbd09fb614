
from .cld_head import CLDGroupHead, CLDNeck, NormedLinear  # noqa: F401
from .margin_contrastive_head import MarginContrastiveHead  # noqa: F401
