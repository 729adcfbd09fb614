from .cld import MoCoCLD, NPIDCLD
from .cld_head import CLDGroupHead
from .cld_neck import CLDNeck, NormedLinear

__all__ = ['MoCoCLD', 'NPIDCLD', 'CLDGroupHead', 'CLDNeck', 'NormedLinear']
