
from .invp import InvP  # noqa: F401
from .cld import MoCoCLD, NPIDCLD  # noqa: F401
from .bsim import BSIMBYOL, BSIMMoCo, BSIMSimCLR, BSIMSimSiam  # noqa: F401
