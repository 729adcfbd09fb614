from .invp import InvP
from .invp_loss import InvPLoss

__all__ = ['InvP', 'InvPLoss']
