from .bsim import BSIMBYOL, BSIMMoCo, BSIMSimCLR, BSIMSimSiam
from .cld import MoCoCLD, NPIDCLD
from .deepcluster import DeepCluster
from .interclr import InterCLRMoCo
from .invp import InvP
from .npid import NPID
from .odc import ODC
from .ring_moco import RingMoCo
from .siamese import SiameseStep, siamese_step

__all__ = [
    'BSIMBYOL', 'BSIMMoCo', 'BSIMSimCLR', 'BSIMSimSiam', 'MoCoCLD',
    'NPIDCLD', 'DeepCluster', 'InterCLRMoCo', 'InvP', 'NPID', 'ODC',
    'RingMoCo', 'SiameseStep', 'siamese_step'
]
