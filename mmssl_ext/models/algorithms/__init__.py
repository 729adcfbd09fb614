
from .invp import InvP  # noqa: F401
from .cld import MoCoCLD, NPIDCLD  # noqa: F401
from .bsim import BSIMBYOL, BSIMMoCo, BSIMSimCLR, BSIMSimSiam  # noqa: F401
from .npid import NPID  # noqa: F401
from .deepcluster import DeepCluster  # noqa: F401
from .odc import ODC  # noqa: F401
from .interclr import InterCLRMoCo  # noqa: F401
