# MMPretrain's own hooks / optimizers / schedulers must be registered too:
# with default_scope='mmssl_ext' the parent registries are not imported lazily.
import mmpretrain.engine  # noqa: F401

from .hooks import *  # noqa: F401,F403
from .runners import *  # noqa: F401,F403
