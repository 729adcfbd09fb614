"""Fake CUDA on the CPU: run code as if its tensors lived on ``cuda:0``
and record every device mismatch and every host synchronisation, with the
file and line that caused it.

The tensors really are CPU tensors (autograd, kernels and data-dependent
control flow all run for real); :class:`FakeCuda` keeps a weak set of the
tensors that are "on CUDA" and two PyTorch modes track it:

* a ``TorchFunctionMode`` (what user code calls): ``x.device`` /
  ``x.is_cuda`` / ``x.get_device()`` answer ``cuda:0`` for a tagged tensor;
  factories and conversions with a CUDA ``device`` (``torch.zeros(...,
  device=x.device)``, ``.to('cuda')``, ``.cuda()``) run on the CPU and tag
  their result; ``.cpu()``, ``.tolist()`` and ``.numpy()`` of a tagged
  tensor are device-to-host copies (``.numpy()`` is an error on CUDA);
  Python data sent to CUDA (``torch.tensor(data, device=cuda)``,
  ``x.new_tensor(data)``) and blocking ``.to('cuda')`` of a host tensor are
  host-to-device copies;
* a ``TorchDispatchMode`` (every ATen op, backward included): an op's
  outputs are tagged when an input is; an op that mixes a tagged tensor
  with a host tensor of one or more dimensions is a device mismatch (CUDA
  raises ``Expected all tensors to be on the same device``; CPU scalars
  mix freely, as on CUDA); ops that read device data on the host are
  synchronisations (``item`` / ``bool`` / ``int`` / ``float``, ``nonzero``,
  boolean-mask indexing, ``unique``, ``masked_select``, ``bincount``,
  ``repeat_interleave`` without ``output_size``, ``equal``, linear-algebra
  error checks, ...); a host index tensor into a tagged tensor and a copy
  between host and device are transfers.

Tensors that ATen creates inside a composite op (no tensor input, not
created by a factory the user called) are *neutral*: they take the device
of what they are combined with, as their CUDA counterparts would be created
on the right device.

Each event records the innermost Python frame outside ``torch`` (and
outside this file): it belongs to ``mmssl_ext`` when that frame is in the
package, to the framework (MMEngine, MMPretrain, ...) otherwise.
:data:`ALLOWED_SYNCS` lists the synchronisations of ``mmssl_ext`` that are
accepted, each with its reason.

What this cannot see: CUDA-only kernels' own behaviour (cuDNN, NCCL, AMP
overflow), memory, speed, and CPU kernels that synchronise where CUDA's
would not (or the reverse); the GPU kit (``tools/gpu_check/``) is the
final word.
"""
import os.path as osp
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Tuple

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves, tree_map
from torch.utils.weak import WeakTensorKeyDictionary

CUDA = torch.device('cuda', 0)
_TORCH_DIR = osp.dirname(torch.__file__) + osp.sep
_THIS = osp.abspath(__file__)
_PKG_DIR = osp.dirname(osp.dirname(_THIS)) + osp.sep
_TESTING_DIR = osp.dirname(_THIS) + osp.sep

_MONITOR = ('periodic: monitoring every `interval` iterations '
            '(DiagnosticsHook, default 50; the check runs it every '
            'iteration), values read on the host to be logged')
_SAMPLER = ('data-dependent: InterCLR\'s negative sampler redraws the '
            'negatives that share the anchor\'s pseudo-label until none does '
            '(one read per round; one round is the rule at ImageNet scale, '
            'with 10,000 clusters) and widens the pool only for the anchors '
            'that need it (a second neighbour search for those rows)')
#: Host synchronisations of mmssl_ext accepted in a training iteration:
#: ``(file relative to mmssl_ext/, function name) -> reason``; the reason
#: starts with ``periodic:`` (work done every N iterations, which the check
#: runs every iteration) or ``data-dependent:`` (every iteration).
ALLOWED_SYNCS: Dict[Tuple[str, str], str] = {
    ('evaluation/functional/diagnostics.py', 'pseudo_label_quality'):
    _MONITOR,
    ('evaluation/functional/diagnostics.py', 'same_label_fraction'):
    _MONITOR,
    ('models/invp/invp.py', 'diagnostics'): _MONITOR,
    ('engine/hooks/offline_cluster_hook.py', 'log_cluster_sizes'):
    ('periodic: cluster sizes logged every `evaluate_interval` iterations '
     '(ClusterMemoryHook, default 50)'),
    ('models/memories/cluster_memory.py', 'deal_with_small_clusters'):
    ('data-dependent: ODC\'s small-cluster pass reads the number of '
     'clusters under `min_cluster` (one value, every '
     '`deal_with_small_clusters_interval` iterations: 1 for ODC and '
     'InterCLR); the dissolve-and-split work that follows (rank 0 decides '
     'on the host, 2-means splits) runs only when a cluster is small'),
    ('models/interclr/neg_sampling.py', '__call__'): _SAMPLER,
    ('models/interclr/neg_sampling.py', '_redraw'): _SAMPLER,
    ('models/interclr/neg_sampling.py', 'draw'): _SAMPLER,
    ('models/interclr/neg_sampling.py', '_widened'): _SAMPLER,
}

aten = torch.ops.aten
#: ops that always wait for the device (their result is read on the host)
_SYNC_OPS = {
    aten._local_scalar_dense: 'item()/bool()/int()/float() of a tensor',
    aten.is_nonzero: 'bool() of a tensor',
    aten.equal: 'torch.equal',
    aten.nonzero: 'nonzero (data-dependent shape)',
    aten.argwhere: 'argwhere (data-dependent shape)',
    aten.masked_select: 'masked_select (data-dependent shape)',
    aten._unique: 'unique (data-dependent shape)',
    aten._unique2: 'unique (data-dependent shape)',
    aten.unique_dim: 'unique (data-dependent shape)',
    aten.unique_consecutive: 'unique_consecutive (data-dependent shape)',
    aten.unique_dim_consecutive: 'unique_consecutive (data-dependent '
    'shape)',
    aten.bincount: 'bincount (reads the maximum on the host)',
    aten._linalg_check_errors: 'linear-algebra error check (reads the '
    'info codes on the host)',
}
#: composite ops whose CPU kernel reads values on the host for an argument
#: check that their CUDA kernel leaves to a device-side assert
_CPU_ONLY_CHECKS = {'one_hot'}
_INDEX_OPS = {aten.index, aten.index_put, aten.index_put_,
              aten._index_put_impl_}
_COPY_OPS = {aten.copy_, aten.copy}
_TO_NAMES = {'to', 'cuda', 'cpu'}


@dataclass
class Event:
    """One device mismatch or host synchronisation."""
    kind: str  # 'mismatch' | 'sync' | 'h2d' | 'd2h'
    what: str
    file: str
    line: int
    func: str
    owner: str  # 'mmssl_ext' | 'framework'
    phase: str = ''
    trail: List[str] = field(default_factory=list)
    #: (file relative to mmssl_ext/, function) of every mmssl_ext frame on
    #: the stack, innermost first
    callers: List[Tuple[str, str]] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f'{self.file}:{self.line}'

    @property
    def is_sync(self) -> bool:
        return self.kind in ('sync', 'h2d', 'd2h')

    def allowed_reason(self) -> Optional[str]:
        """The reason of the first allow-list entry on the event's stack
        (an entry covers everything its function calls)."""
        if self.owner != 'mmssl_ext':
            return None
        for key in self.callers:
            if key in ALLOWED_SYNCS:
                return ALLOWED_SYNCS[key]
        return None

    def __str__(self) -> str:
        s = f'{self.kind}: {self.what} at {self.where} ({self.func})'
        if self.trail:
            s += ' <- ' + ' <- '.join(self.trail)
        return s


def _rel(path: str) -> str:
    path = osp.abspath(path)
    if path.startswith(_PKG_DIR):
        return 'mmssl_ext/' + path[len(_PKG_DIR):]
    for marker in ('site-packages' + osp.sep, osp.sep + 'tools' + osp.sep,
                   osp.sep + 'tests' + osp.sep):
        if marker in path:
            head = marker.strip(osp.sep)
            rest = path.split(marker, 1)[1]
            return rest if head == 'site-packages' else f'{head}/{rest}'
    return path


def _is_torch_file(path: str) -> bool:
    return path.startswith(_TORCH_DIR) or path.startswith('<')


def _is_device(d) -> bool:
    return d is not None and not isinstance(d, torch.dtype)


def _to_device(d) -> Optional[torch.device]:
    if d is None:
        return None
    if isinstance(d, torch.device):
        return d
    if isinstance(d, int):
        return torch.device('cuda', d)
    return torch.device(d)


class _Generator(torch.Generator):
    """``torch.Generator`` while fake CUDA is on: a CUDA generator is a CPU
    one that remembers it was asked for CUDA."""

    def __new__(cls, device='cpu'):
        g = super().__new__(cls, 'cpu')
        d = _to_device(device) or torch.device('cpu')
        g.fake_cuda = d.type == 'cuda'
        return g

    def __init__(self, device='cpu'):
        pass


def _gen_is_cuda(g) -> bool:
    return bool(getattr(g, 'fake_cuda', False))


class _FunctionMode(TorchFunctionMode):

    def __init__(self, owner: 'FakeCuda'):
        super().__init__()
        self.owner = owner

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        fc = self.owner
        name = getattr(func, '__name__', '')
        if name == '__get__':
            attr = getattr(getattr(func, '__self__', None), '__name__', '')
            t = args[0]
            if attr == 'device' and fc.is_cuda(t):
                return CUDA
            if attr == 'is_cuda' and fc.is_cuda(t):
                return True
            out = func(*args, **kwargs)
            if attr in ('data', 'grad') and fc.is_cuda(t) and isinstance(
                    out, torch.Tensor):
                fc.tag(out)
            return out
        if name == '__set__':
            attr = getattr(getattr(func, '__self__', None), '__name__', '')
            if attr == 'data' and fc.is_cuda(args[1]):
                fc.tag(args[0])
            return func(*args, **kwargs)
        self_t = args[0] if args and isinstance(args[0],
                                                torch.Tensor) else None
        if self_t is not None and fc.is_cuda(self_t):
            if name == 'get_device':
                return 0
            if name in ('tolist', ):
                fc.record('d2h', f'Tensor.{name}()')
                return func(*args, **kwargs)
            if name in ('numpy', '__array__'):
                fc.record('mismatch', f'Tensor.{name}() of a CUDA tensor '
                          '(CUDA raises: use .cpu() first)')
                return func(*args, **kwargs)
            if name == 'new_tensor':
                fc.record('h2d', 'Tensor.new_tensor (blocking host-to-'
                          'device copy)')
                return fc._run_tagged(func, args, kwargs, None)
        if name in _TO_NAMES and self_t is not None:
            return self._convert(func, name, args, kwargs)
        dev = kwargs.get('device')
        gen = kwargs.get('generator')
        if gen is not None:
            on_cuda = (_is_device(dev) and _to_device(dev).type == 'cuda') \
                or any(fc.is_cuda(a) for a in args
                       if isinstance(a, torch.Tensor))
            if on_cuda != _gen_is_cuda(gen):
                fc.record('mismatch', f'{name}: a '
                          f'{"CUDA" if _gen_is_cuda(gen) else "CPU"} '
                          f'generator for a {"CUDA" if on_cuda else "host"}'
                          ' tensor (CUDA raises)')
        if _is_device(dev):
            d = _to_device(dev)
            if d.type == 'cuda':
                if name in ('tensor', 'as_tensor', 'new_tensor') and not (
                        isinstance(args[0] if args else None, torch.Tensor)
                        and fc.is_cuda(args[0])):
                    fc.record('h2d', f'torch.{name}(..., device=cuda) '
                              '(blocking host-to-device copy)')
                return fc._run_tagged(func, args, kwargs, 'cpu')
        return fc._run(func, args, kwargs, factory=dev is not None or name
                       in _FACTORIES)

    def _convert(self, func, name, args, kwargs):
        fc = self.owner
        t = args[0]
        if name == 'cuda':
            target = CUDA
            non_blocking = kwargs.get('non_blocking', False) or (
                len(args) > 2 and bool(args[2]))
        elif name == 'cpu':
            target, non_blocking = torch.device('cpu'), False
        else:
            parsed = torch._C._nn._parse_to(*args[1:], **kwargs)
            target, non_blocking = parsed[0], parsed[2]
            if len(args) > 1 and isinstance(args[1], torch.Tensor):
                target = CUDA if fc.is_cuda(args[1]) else args[1].device
        src_cuda = fc.is_cuda(t)
        if target is None:  # dtype / memory format only
            return fc._run(func, args, kwargs)
        if target.type == 'cuda':
            if name == 'cuda':
                out = t
            else:
                args, kwargs = _replace_device(args, kwargs)
                out = func(*args, **kwargs)
            if src_cuda:
                return out
            if not non_blocking and t.dim() > 0:
                fc.record('h2d', f'Tensor.{name}(cuda) of a host tensor '
                          '(blocking host-to-device copy)')
            if out is t:  # a no-op on the CPU: make the copy CUDA makes
                out = t.clone()
            fc.untag_neutral(out)
            return fc.tag(out)
        # to the host
        out = func(*args, **kwargs)
        if src_cuda:
            fc.record('d2h', f'Tensor.{name}() to the host')
            if out is t:
                out = t.clone()
            fc.untag(out)
        return out


def _replace_device(args, kwargs):
    """``args``/``kwargs`` of ``Tensor.to`` with the device made CPU."""
    kwargs = dict(kwargs)
    if 'device' in kwargs:
        kwargs['device'] = 'cpu'
    new = [args[0]]
    for a in args[1:]:
        if isinstance(a, (str, torch.device, int)) and not isinstance(
                a, bool):
            a = 'cpu'
        elif isinstance(a, torch.Tensor):
            a = a.dtype
        new.append(a)
    return tuple(new), kwargs


_FACTORIES = {
    'zeros', 'ones', 'empty', 'full', 'arange', 'range', 'linspace',
    'logspace', 'eye', 'rand', 'randn', 'randint', 'randperm', 'tensor',
    'as_tensor', 'empty_strided', 'normal', 'scalar_tensor', 'tril_indices',
    'triu_indices', 'zeros_like', 'ones_like', 'empty_like', 'full_like',
    'rand_like', 'randn_like', 'randint_like', 'from_numpy'
}


class _DispatchMode(TorchDispatchMode):

    def __init__(self, owner: 'FakeCuda'):
        super().__init__()
        self.owner = owner

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        fc = self.owner
        leaves = [a for a in tree_leaves((args, kwargs))
                  if isinstance(a, torch.Tensor)]
        cuda = [a for a in leaves if fc.is_cuda(a)]
        pkt = func.overloadpacket
        if cuda:
            host = [a for a in leaves if a.dim() > 0 and not fc.is_cuda(a)
                    and a not in fc._neutral]
            if pkt in _SYNC_OPS and not (pkt is aten._local_scalar_dense
                                         and fc._outer in _CPU_ONLY_CHECKS):
                fc.record('sync', _SYNC_OPS[pkt])
            if pkt is aten.repeat_interleave and kwargs.get(
                    'output_size') is None and len(args) < 4:
                fc.record('sync', 'repeat_interleave without output_size')
            if pkt in _INDEX_OPS:
                idx = args[1] if len(args) > 1 else kwargs.get('indices')
                idx = [i for i in (idx or []) if isinstance(i, torch.Tensor)]
                if any(i.dtype in (torch.bool, torch.uint8) for i in idx):
                    fc.record('sync', 'boolean-mask indexing (nonzero: '
                              'data-dependent shape)')
                host_idx = [i for i in idx if i.dim() > 0
                            and not fc.is_cuda(i) and i not in fc._neutral]
                if host_idx:
                    fc.record('h2d', 'host index tensor into a CUDA tensor '
                              '(blocking host-to-device copy)')
                host = [a for a in host if not any(a is i for i in idx)]
            if pkt in _COPY_OPS:
                dst, src = args[0], args[1]
                if fc.is_cuda(dst) and not fc.is_cuda(src) and src.dim(
                ) > 0 and src not in fc._neutral:
                    if not (args[2] if len(args) > 2 else kwargs.get(
                            'non_blocking', False)):
                        fc.record('h2d', 'copy_ from a host tensor into a '
                                  'CUDA tensor (blocking)')
                elif not fc.is_cuda(dst) and fc.is_cuda(src):
                    fc.record('d2h', 'copy_ from a CUDA tensor into a host '
                              'tensor')
                host = []
            if host:
                shapes = ', '.join(str(tuple(h.shape)) for h in host[:3])
                fc.record('mismatch', f'{pkt.__name__}: CUDA tensor(s) '
                          f'mixed with host tensor(s) of shape {shapes} '
                          '(CUDA raises: expected all tensors on the same '
                          'device)')
        out = func(*args, **kwargs)
        if cuda:
            if pkt in _COPY_OPS and not fc.is_cuda(args[0]):
                return out
            for o in tree_leaves(out):
                if isinstance(o, torch.Tensor):
                    fc.tag(o)
        elif fc._factory_depth == 0 and (not leaves or all(
                a in fc._neutral for a in leaves)):
            # created inside a composite op: takes the device of its users
            for o in tree_leaves(out):
                if isinstance(o, torch.Tensor):
                    fc._neutral[o] = True
        return out


class FakeCuda:
    """Context manager: fake CUDA on the CPU (see the module docstring).

    ``fc.to_cuda(module)`` puts a module's parameters and buffers "on
    CUDA" (and MMEngine data preprocessors' device); inside ``with fc:``
    events are recorded in ``fc.events`` with ``fc.phase`` as their phase.
    """

    def __init__(self):
        self._tags = WeakTensorKeyDictionary()
        self._neutral = WeakTensorKeyDictionary()
        self.events: List[Event] = []
        self.phase = ''
        self._factory_depth = 0
        self._outer = ''
        self._fmode = self._dmode = None

    # --- tags -------------------------------------------------------------
    def tag(self, t: torch.Tensor) -> torch.Tensor:
        self._tags[t] = True
        return t

    def untag(self, t: torch.Tensor) -> None:
        self._tags.pop(t, None)

    def untag_neutral(self, t: torch.Tensor) -> None:
        self._neutral.pop(t, None)

    def is_cuda(self, t) -> bool:
        return isinstance(t, torch.Tensor) and t in self._tags

    def to_cuda(self, module: torch.nn.Module) -> torch.nn.Module:
        """Tag every parameter and buffer of ``module`` (in place) and point
        MMEngine's data preprocessors (and models) at ``cuda:0``."""
        for p in module.parameters():
            self.tag(p)
        for b in module.buffers():
            self.tag(b)
        for m in module.modules():
            if hasattr(m, '_device') and isinstance(m._device, torch.device):
                m._device = CUDA
        return module

    # --- running ------------------------------------------------------------
    def _run(self, func, args, kwargs, factory: bool = False):
        if factory:
            self._factory_depth += 1
        outer = self._outer
        self._outer = getattr(func, '__name__', '')
        if self._outer == 'one_hot' and (kwargs.get('num_classes', args[1]
                                                    if len(args) > 1 else -1)
                                         == -1):
            self._outer = ''  # the class count is read on CUDA too
        try:
            return func(*args, **kwargs)
        finally:
            self._outer = outer
            if factory:
                self._factory_depth -= 1

    def _run_tagged(self, func, args, kwargs, device):
        if device is not None:
            kwargs = dict(kwargs, device=device)
        out = self._run(func, args, kwargs, factory=True)
        tree_map(lambda o: self.tag(o) if isinstance(o, torch.Tensor) else o,
                 out)
        return out

    def record(self, kind: str, what: str) -> None:
        frame = sys._getframe(1)
        site = None
        trail, callers = [], []
        while frame is not None:
            path = frame.f_code.co_filename
            if not (_is_torch_file(path) or osp.abspath(path) == _THIS):
                if site is None:
                    site = frame
                elif len(trail) < 3:
                    trail.append(f'{_rel(path)}:{frame.f_lineno}')
                apath = osp.abspath(path)
                if apath.startswith(_PKG_DIR) and not apath.startswith(
                        _TESTING_DIR):
                    callers.append((apath[len(_PKG_DIR):],
                                    frame.f_code.co_name))
            frame = frame.f_back
        if site is None:
            self.events.append(Event(kind, what, '?', 0, '?', 'framework',
                                     self.phase))
            return
        path = osp.abspath(site.f_code.co_filename)
        mine = path.startswith(_PKG_DIR) and not path.startswith(
            _TESTING_DIR)
        self.events.append(
            Event(kind, what, _rel(path), site.f_lineno,
                  site.f_code.co_name, 'mmssl_ext' if mine else 'framework',
                  self.phase, trail, callers))

    def __enter__(self):
        self._generator = torch.Generator
        torch.Generator = _Generator
        self._fmode = _FunctionMode(self)
        self._dmode = _DispatchMode(self)
        self._fmode.__enter__()
        self._dmode.__enter__()
        return self

    def __exit__(self, *exc):
        self._dmode.__exit__(*exc)
        self._fmode.__exit__(*exc)
        torch.Generator = self._generator
        return False

    # --- reports --------------------------------------------------------
    def mismatches(self) -> List[Event]:
        return [e for e in self.events if e.kind == 'mismatch']

    def syncs(self, phase: Optional[str] = None,
              owner: Optional[str] = None) -> List[Event]:
        return [e for e in self.events if e.is_sync and (
            phase is None or e.phase == phase) and (owner is None
                                                    or e.owner == owner)]

    def unexpected(self, phases: Iterable[str]) -> List[Event]:
        """Mismatches anywhere, and syncs of mmssl_ext in ``phases`` that
        are not on :data:`ALLOWED_SYNCS`."""
        phases = set(phases)
        return self.mismatches() + [
            e for e in self.syncs(owner='mmssl_ext')
            if e.phase in phases and e.allowed_reason() is None]


def summarize(events: Iterable[Event]) -> List[str]:
    """One line per distinct (kind, site, what), with its count."""
    c = Counter((e.kind, e.where, e.func, e.what) for e in events)
    return [f'{n}x {k}: {what} at {where} ({func})'
            for (k, where, func, what), n in sorted(c.items())]


__all__ = ['FakeCuda', 'Event', 'ALLOWED_SYNCS', 'CUDA', 'summarize']
