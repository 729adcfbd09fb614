from .digits import DigitsDataset, load_digits_arrays
from .in_memory import InMemoryImageDataset, SyntheticImageDataset
from .transforms import *  # noqa: F401,F403

__all__ = [
    'DigitsDataset', 'load_digits_arrays', 'InMemoryImageDataset',
    'SyntheticImageDataset'
]
from .cluster_sampler import ClusterSampler  # noqa: F401,E402
from .box_store import ContrastiveCropDataset, SharedBoxStore  # noqa: F401,E402
