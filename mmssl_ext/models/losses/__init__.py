
from .invp_loss import InvPLoss  # noqa: F401
