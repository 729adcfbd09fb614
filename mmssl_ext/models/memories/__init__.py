from .cluster_memory import ClusterMemory
from .feature_memory import FeatureMemory
from .queue import FeatureQueue

__all__ = ['FeatureMemory', 'ClusterMemory', 'FeatureQueue']
