from .base import (BaseMemory, ClusterState, build_memory, check_memories,
                   find_memories, label_counts, last_occurrence)
from .cluster_memory import ClusterMemory, LabelMemory
from .feature_memory import FeatureMemory
from .neighbour_memory import NeighbourMemory
from .queue import FeatureQueue

__all__ = [
    'BaseMemory', 'ClusterState', 'build_memory', 'check_memories',
    'find_memories', 'label_counts', 'last_occurrence', 'FeatureMemory',
    'NeighbourMemory', 'ClusterMemory', 'LabelMemory', 'FeatureQueue'
]
