"""Scalar state that Python reads every step, kept on the host.

A flag or counter that the training step needs as a Python value (a ring
pointer, a step counter seeding a generator, "is the memory filled yet")
must not be read back from a CUDA buffer every iteration: each read waits
for the whole GPU queue. It lives as a Python value, mirrored into a
persistent scalar buffer so that the checkpoint holds it and a resumed run
continues exactly; the writer updates both (``fill_`` with a Python number
launches a kernel, it does not wait). After ``load_state_dict`` the mirror
is dropped and re-read once from the loaded buffer.
"""
import os
from typing import Union

import torch
import torch.nn as nn

Number = Union[bool, int, float]
_CACHE = '_host_scalars'


def _drop_mirrors(module: nn.Module, incompatible_keys=None) -> None:
    module.__dict__.pop(_CACHE, None)


def register_host_scalar(module: nn.Module, name: str, value: Number,
                         dtype: torch.dtype = None) -> None:
    """Register the persistent scalar buffer ``name`` holding ``value`` and
    its host mirror."""
    dtype = dtype or (torch.bool if isinstance(value, bool) else
                      torch.long if isinstance(value, int) else
                      torch.float32)
    module.register_buffer(name, torch.tensor(value, dtype=dtype))
    if not getattr(module, '_host_scalar_hook', False):
        module.register_load_state_dict_post_hook(_drop_mirrors)
        module._host_scalar_hook = True
    module.__dict__.setdefault(_CACHE, {})[name] = _py(value, dtype)


def _py(value, dtype) -> Number:
    if dtype == torch.bool:
        return bool(value)
    if dtype.is_floating_point:
        return float(value)
    return int(value)


def host_scalar(module: nn.Module, name: str, compute=None) -> Number:
    """The Python value of the scalar buffer ``name`` (read from the device
    only when no mirror is held: after a checkpoint load). With
    ``compute``, the value is ``compute()`` instead of the buffer's (a
    value derived from buffers, e.g. "every label is set"), cached the
    same way."""
    cache = module.__dict__.setdefault(_CACHE, {})
    if name not in cache:
        if compute is not None:
            cache[name] = compute()
            if not getattr(module, '_host_scalar_hook', False):
                module.register_load_state_dict_post_hook(_drop_mirrors)
                module._host_scalar_hook = True
        else:
            buf = getattr(module, name)
            cache[name] = _py(buf.item(), buf.dtype)
    return cache[name]


def set_host_value(module: nn.Module, name: str, value) -> None:
    """Set the cached host value ``name`` (a value ``host_scalar`` derives
    with ``compute``) after its writer changed the buffers it depends on."""
    module.__dict__.setdefault(_CACHE, {})[name] = value


def set_host_scalar(module: nn.Module, name: str, value: Number) -> None:
    """Write ``value`` to the buffer ``name`` (no host sync) and its
    mirror."""
    buf = getattr(module, name)
    value = _py(value, buf.dtype)
    buf.fill_(value)
    module.__dict__.setdefault(_CACHE, {})[name] = value


#: environment variable that turns the value checks on for CUDA tensors
DEBUG_ENV = 'MMSSL_EXT_DEBUG_CHECKS'


def value_checks(t: torch.Tensor) -> bool:
    """Whether to run a check that reads tensor values on the host
    (finiteness, index ranges) in the per-iteration path: always for CPU
    tensors (nothing to wait for), for CUDA tensors only in debug mode
    (``MMSSL_EXT_DEBUG_CHECKS=1``), since each read waits for the whole GPU
    queue. Without it, the same bad values are caught on the host where
    they enter (``get_sample_idx`` checks the batch's indices) or by their
    effect (``NonFiniteLossHook`` stops at a non-finite loss)."""
    return t.device.type == 'cpu' or os.environ.get(DEBUG_ENV, '') not in (
        '', '0')
