from .bsim import BSIMBYOL, BSIMMoCo, BSIMSimCLR, BSIMSimSiam
from .instance_mix import InstanceMixer, MixParams
from .mixture_branch import MixtureBranch

__all__ = [
    'BSIMBYOL', 'BSIMMoCo', 'BSIMSimCLR', 'BSIMSimSiam', 'MixtureBranch',
    'InstanceMixer', 'MixParams'
]
