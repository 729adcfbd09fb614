from .cld_head import CLDGroupHead, CLDNeck, NormedLinear
from .margin_contrastive_head import MarginContrastiveHead

__all__ = ['CLDGroupHead', 'CLDNeck', 'NormedLinear', 'MarginContrastiveHead']
