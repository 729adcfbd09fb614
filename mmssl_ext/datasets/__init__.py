from .cluster_sampler import ClusterSampler
from .digits import DigitsDataset, load_digits_arrays
from .in_memory import InMemoryImageDataset, SyntheticImageDataset
from .transforms import *  # noqa: F401,F403

__all__ = [
    'ClusterSampler',
    'DigitsDataset', 'load_digits_arrays', 'InMemoryImageDataset',
    'SyntheticImageDataset'
]
