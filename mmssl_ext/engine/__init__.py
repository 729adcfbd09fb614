from .hooks import *  # noqa: F401,F403
from .runners import *  # noqa: F401,F403
import mmpretrain.engine  # noqa: F401,E402 (MMPretrain hooks, optimizers)
