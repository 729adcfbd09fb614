from .cld import MoCoCLD, NPIDCLD
from .cld_head import CLDGroupHead
from .cld_neck import CLDNeck, NormedLinear
from .group_branch import GroupBranch

__all__ = [
    'MoCoCLD', 'NPIDCLD', 'CLDGroupHead', 'CLDNeck', 'GroupBranch',
    'NormedLinear'
]
