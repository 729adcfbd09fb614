from .knn_loop import KNNTestLoop, KNNValLoop
from .memory_bank_knn_loop import MemoryBankKNNTestLoop, MemoryBankKNNValLoop

__all__ = [
    'KNNValLoop', 'KNNTestLoop', 'MemoryBankKNNValLoop',
    'MemoryBankKNNTestLoop'
]
