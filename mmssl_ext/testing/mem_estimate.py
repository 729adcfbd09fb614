"""Peak tensor memory of a training step, counted on the CPU.

:class:`PeakMemory` is a ``TorchDispatchMode`` that counts the bytes of
every live tensor storage: the storages that exist when it starts (what
``track`` is given: parameters, buffers, optimizer state) and every storage
an ATen op creates while it is on (activations, gradients, optimizer state,
temporaries), each freed when its storage dies. ``peak`` is the largest
total seen. The same ops on CUDA allocate the same tensors, so this is an
estimate of ``torch.cuda.max_memory_allocated()`` for the step; what it
does not count: the CUDA context, cuDNN / cuBLAS workspaces, the caching
allocator's rounding and fragmentation, and kernels whose CUDA version
allocates temporaries that the CPU kernel does not (or the reverse).
"""
import weakref
from typing import Iterable

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves


class PeakMemory(TorchDispatchMode):
    """Count live tensor storage bytes; ``peak`` / ``current`` in bytes."""

    def __init__(self):
        super().__init__()
        self.live = {}
        self.current = 0
        self.peak = 0

    def _free(self, key: int) -> None:
        nbytes = self.live.pop(key, 0)
        self.current -= nbytes

    def track(self, tensors: Iterable[torch.Tensor]) -> None:
        """Count already existing tensors (parameters, buffers, ...)."""
        for t in tensors:
            if isinstance(t, torch.Tensor):
                self._add(t)

    def _add(self, t: torch.Tensor) -> None:
        try:
            st = t.untyped_storage()
        except (RuntimeError, NotImplementedError):
            return
        key = st._cdata
        if key in self.live:
            return
        nbytes = st.nbytes()
        self.live[key] = nbytes
        self.current += nbytes
        self.peak = max(self.peak, self.current)
        weakref.finalize(st, self._free, key)

    def reset_peak(self) -> None:
        self.peak = self.current

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for o in tree_leaves(out):
            if isinstance(o, torch.Tensor):
                self._add(o)
        return out
