"""Loading mmengine checkpoints under PyTorch >= 2.6.

PyTorch 2.6 changed ``torch.load``'s default to ``weights_only=True``.
mmengine 0.10.x calls ``torch.load(filename, map_location=...)`` without the
argument, so resuming one of its own checkpoints fails with::

    _pickle.UnpicklingError: Weights only load failed ... Unsupported global:
    GLOBAL mmengine.logging.history_buffer.HistoryBuffer

Instead of turning safety off for every load (``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``
or ``weights_only=False``), we allow-list exactly the types an mmengine /
mmssl_ext checkpoint holds: the message hub's ``HistoryBuffer`` and the numpy
scalars/arrays inside it and in ``meta``. This is the single place where that
decision is made; ``import mmssl_ext`` applies it.
"""
import torch

_APPLIED = False


def _checkpoint_globals() -> list:
    import numpy as np
    from mmengine.logging.history_buffer import HistoryBuffer

    allowed = [HistoryBuffer, np.ndarray, np.dtype, getattr]
    # numpy >= 2 moved the pickling helpers to numpy._core.
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 2
        from numpy.core import multiarray
    allowed += [multiarray._reconstruct, multiarray.scalar]
    # Concrete dtype classes (numpy >= 1.25) appear in pickled arrays/scalars.
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        for name in ('Float64DType', 'Float32DType', 'Float16DType',
                     'Int64DType', 'Int32DType', 'Int16DType', 'Int8DType',
                     'UInt8DType', 'BoolDType', 'StrDType', 'ObjectDType'):
            if hasattr(dtypes, name):
                allowed.append(getattr(dtypes, name))
    return allowed


def allow_mmengine_checkpoints() -> None:
    """Allow-list the globals of mmengine checkpoints for ``weights_only``.

    Idempotent; a no-op on PyTorch versions without ``add_safe_globals``.
    """
    global _APPLIED
    if _APPLIED:
        return
    add = getattr(torch.serialization, 'add_safe_globals', None)
    if add is not None:
        add(_checkpoint_globals())
    _APPLIED = True
