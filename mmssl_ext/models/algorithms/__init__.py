from .composed import BaseBranch, ComposedSSL, Composition, composed_class
from .deepcluster import DeepCluster
from .npid import NPID
from .odc import ODC, ODCNeck
from .ring_moco import RingMoCo
from .siamese import SiameseStep, framework_of, siamese_step

__all__ = [
    'BaseBranch', 'ComposedSSL', 'Composition', 'DeepCluster', 'NPID', 'ODC', 'ODCNeck',
    'RingMoCo', 'SiameseStep', 'composed_class', 'framework_of',
    'siamese_step'
]
