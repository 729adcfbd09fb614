
from .invp import InvP  # noqa: F401
