from .knn_loop import KNNTestLoop, KNNValLoop

__all__ = ['KNNValLoop', 'KNNTestLoop']
from .memory_bank_knn_loop import MemoryBankKNNTestLoop, MemoryBankKNNValLoop  # noqa: F401,E501
