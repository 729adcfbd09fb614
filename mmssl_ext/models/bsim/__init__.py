from .bsim import BSIMBYOL, BSIMMoCo, BSIMSimCLR, BSIMSimSiam
from .instance_mix import InstanceMixer, MixParams
from .mixture_branch import MixtureBranch, MixtureTerm

__all__ = [
    'BSIMBYOL', 'BSIMMoCo', 'BSIMSimCLR', 'BSIMSimSiam', 'MixtureBranch',
    'MixtureTerm', 'InstanceMixer', 'MixParams'
]
