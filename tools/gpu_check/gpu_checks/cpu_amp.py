"""MMEngine's ``AmpOptimWrapper`` on the CPU, for the kit's tiny CPU mode
only: bfloat16 autocast (the CPU's), no loss scaling (PyTorch's CUDA
GradScaler disables itself without a GPU). It lets the test suite run the
AMP items -- the models under autocast, the wrapper's checkpoint state,
the resume -- where MMEngine itself refuses to build the wrapper."""
import mmengine.optim.optimizer.amp_optimizer_wrapper as _amp
from mmengine.optim import AmpOptimWrapper

from mmssl_ext.registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module(force=True)
class GpuCheckCpuAmpOptimWrapper(AmpOptimWrapper):

    def __init__(self, **kwargs):
        kwargs.setdefault('dtype', 'bfloat16')
        real = _amp.is_cuda_available
        _amp.is_cuda_available = lambda: True  # the wrapper's GPU check
        try:
            super().__init__(**kwargs)
        finally:
            _amp.is_cuda_available = real
