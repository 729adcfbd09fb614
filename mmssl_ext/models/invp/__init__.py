from .invp import InvP
from .invp_loss import InvPLoss
from .neighbour_memory import NeighbourMemory

__all__ = ['InvP', 'InvPLoss', 'NeighbourMemory']
