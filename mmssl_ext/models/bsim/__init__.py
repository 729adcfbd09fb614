from .bsim import BSIMBYOL, BSIMMoCo, BSIMSimCLR, BSIMSimSiam, MixtureTerm
from .instance_mix import InstanceMixer, MixParams

__all__ = [
    'BSIMBYOL', 'BSIMMoCo', 'BSIMSimCLR', 'BSIMSimSiam', 'MixtureTerm',
    'InstanceMixer', 'MixParams'
]
