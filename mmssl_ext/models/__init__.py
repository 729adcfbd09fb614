# shared: memories (per-sample state), utils, the frameworks and baselines
from .algorithms import *  # noqa: F401,F403
from .memories import *  # noqa: F401,F403
from .utils import *  # noqa: F401,F403
# one package per method
from .bsim import *  # noqa: F401,F403
from .cld import *  # noqa: F401,F403
from .interclr import *  # noqa: F401,F403
from .invp import *  # noqa: F401,F403
