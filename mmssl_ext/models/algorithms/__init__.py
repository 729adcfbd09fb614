from .deepcluster import DeepCluster
from .npid import NPID
from .odc import ODC
from .ring_moco import RingMoCo
from .siamese import SiameseStep, siamese_step

__all__ = [
    'DeepCluster', 'NPID', 'ODC', 'RingMoCo', 'SiameseStep', 'siamese_step'
]
