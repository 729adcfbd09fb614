"""Shared pieces of the GPU validation kit: process set-up, the time
guard, item bookkeeping, config rewriting, state capture and comparison.

Nothing here is imported by ``mmssl_ext`` itself; the kit only reads the
package and its configs.
"""
import copy
import functools
import gc
import importlib.abc
import importlib.util
import math
import os
import os.path as osp
import sys
import time
import traceback
from typing import Any, Callable, Dict, Iterable, List, Optional

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..', '..'))

#: length of the ImageNet-1k training set (the banks' length contract)
IMAGENET_LEN = 1281167
#: length of the digits training split the digits recipes are sized for
DIGITS_LEN = 4000


# ---------------------------------------------------------------------------
# process set-up
# ---------------------------------------------------------------------------
class _BlockedLoader(importlib.abc.Loader):

    def __init__(self, names):
        self.names = names

    def create_module(self, spec):
        raise ModuleNotFoundError(
            f'{spec.name} is blocked by the GPU check (--forbid-modules '
            f'{",".join(self.names)})', name=spec.name)

    def exec_module(self, module):  # pragma: no cover - never reached
        pass


class _ForbidImports(importlib.abc.MetaPathFinder):
    """Make NAME (and its submodules) look absent, so that a run proves the
    code paths it exercises never need NAME (``mmcv.ops``, ``mmdet``,
    ``faiss``: absent on the lent GPU machine). ``import NAME`` raises
    ModuleNotFoundError. Blocking ``mmcv.ops`` also hides ``mmcv._ext``
    (its spec has no loader), which is how MMEngine tells mmcv-lite from
    a full MMCV."""

    def __init__(self, names: Iterable[str]):
        self.names = tuple(n for n in names if n)
        self.loader = _BlockedLoader(self.names)

    def find_spec(self, fullname, path=None, target=None):
        import importlib.machinery
        if fullname == 'mmcv._ext' and 'mmcv.ops' in self.names:
            return importlib.machinery.ModuleSpec(fullname, None)
        for n in self.names:
            if fullname == n or fullname.startswith(n + '.'):
                return importlib.machinery.ModuleSpec(fullname, self.loader)
        return None


def setup_process(forbid: Iterable[str] = ()) -> None:
    """Call first in every process of the kit (the main one and the
    spawned ranks): block ``forbid`` imports, put the repository first on
    ``sys.path``, import ``mmssl_ext`` (registries) and memoise the digits
    arrays (each digits data set would otherwise re-read the CSV)."""
    forbid = tuple(forbid)
    if forbid and not any(isinstance(f, _ForbidImports)
                          for f in sys.meta_path):
        sys.meta_path.insert(0, _ForbidImports(forbid))
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    import mmssl_ext  # noqa: F401
    from mmssl_ext.datasets import digits
    if not hasattr(digits.load_digits_arrays, 'cache_info'):
        digits.load_digits_arrays = functools.lru_cache(maxsize=4)(
            digits.load_digits_arrays)
    from . import cpu_amp, synthetic  # noqa: F401  (registrations)
    _fast_config_text()


def _fast_config_text() -> None:
    """MMEngine formats the whole config with yapf (``Config.pretty_text``,
    ~0.2 s of CPU) each time a runner starts, logs or saves a checkpoint:
    about ten times per recipe here. The kit never reads that text back, so
    it gets the unformatted dict instead (checkpoint ``meta['cfg']`` and
    the dumped config are the only places it shows)."""
    import pprint

    from mmengine.config import Config
    if not getattr(Config, '_gpu_check_fast_text', False):
        Config.pretty_text = property(
            lambda self: pprint.pformat(self.to_dict(), width=100))
        Config._gpu_check_fast_text = True


def device_of(mode: str):
    import torch
    return torch.device('cuda', 0) if mode == 'cuda' else torch.device('cpu')


def sync(device) -> None:
    import torch
    if getattr(device, 'type', device) == 'cuda':
        torch.cuda.synchronize()


def free_memory() -> None:
    import torch
    gc.collect()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


# ---------------------------------------------------------------------------
# time guard and bookkeeping
# ---------------------------------------------------------------------------
class Budget:
    """Wall-clock guard: no new item starts when its estimate would end
    past ``total_s`` (counted from the kit's start)."""

    def __init__(self, total_s: float):
        self.total_s = float(total_s)
        self.t0 = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def left(self) -> float:
        return self.total_s - self.elapsed()

    def allow(self, estimate_s: float) -> bool:
        return self.elapsed() + float(estimate_s) <= self.total_s


class Skip(Exception):
    """Raised by a check item that cannot run here (reason in the text)."""


def error_text(limit: int = 4000) -> str:
    text = traceback.format_exc()
    return text if len(text) <= limit else '...' + text[-limit:]


def run_item(items: List[dict], budget: Budget, name: str, fn: Callable,
             estimate_s: float, on_update: Optional[Callable] = None,
             **meta) -> dict:
    """Run one check item: never raises. The item dict gets ``status``
    (``pass`` / ``fail`` / ``skipped``), ``seconds`` and, on failure,
    ``error`` (the traceback tail) or the ``problems`` the item found."""
    item = dict(name=name, **meta)
    items.append(item)
    if not budget.allow(estimate_s):
        item.update(status='skipped',
                    reason=f'time guard: {budget.left():.0f} s left, the '
                    f'item needs ~{estimate_s:.0f} s')
        if on_update:
            on_update()
        return item
    t0 = time.monotonic()
    try:
        out = fn() or {}
        item.update(out)
        problems = item.get('problems') or []
        item['status'] = 'fail' if problems else 'pass'
    except Skip as e:
        item.update(status='skipped', reason=str(e))
    except BaseException as e:  # noqa: B902 - one failure must not stop all
        if isinstance(e, KeyboardInterrupt):
            raise
        item.update(status='fail', error=error_text())
    finally:
        item['seconds'] = round(time.monotonic() - t0, 2)
        free_memory()
    if on_update:
        on_update()
    return item


# ---------------------------------------------------------------------------
# config rewriting
# ---------------------------------------------------------------------------
def walk_dicts(obj, fn: Callable[[dict], None]) -> None:
    """Call ``fn`` on every dict nested in ``obj`` (dicts, lists, tuples)."""
    if isinstance(obj, dict):
        fn(obj)
        for v in list(obj.values()):
            walk_dicts(v, fn)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            walk_dicts(v, fn)


#: keys of a recipe's model whose value is tied to the data set length
_LENGTH_KEYS = ('length', )
_POOL_KEYS = ('semihard_neg_pool_num', 'semieasy_neg_pool_num')


def scale_dataset_sizes(model: dict, full: int, n: int) -> Dict[str, Any]:
    """Rewrite, in place, the model config's sizes that are tied to the
    training-set length from ``full`` to ``n`` samples: bank lengths,
    cluster counts (and the classifier heads sized by them), small-cluster
    thresholds, InterCLR's negative pools and counts, InvP's background
    set. Returns ``{key: (old, new)}`` of what changed."""
    if n == full:
        return {}
    r = n / full
    changed = {}
    cluster_ks = set()

    def scaled(v, lo=1):
        return max(lo, int(round(v * r)))

    def first_pass(d):
        for key in _LENGTH_KEYS:
            if d.get(key) == full:
                changed.setdefault(key, (full, n))
                d[key] = n
        if isinstance(d.get('num_clusters'), int):
            k = d['num_clusters']
            cluster_ks.add(k)
            d['num_clusters'] = scaled(k, 2)
            changed['num_clusters'] = (k, d['num_clusters'])
        if isinstance(d.get('min_cluster'), int) and d['min_cluster'] > 0:
            old = d['min_cluster']
            d['min_cluster'] = scaled(old)
            changed['min_cluster'] = (old, d['min_cluster'])
        pool = None
        for key in _POOL_KEYS:
            if isinstance(d.get(key), int):
                old = d[key]
                d[key] = min(n - 1, scaled(old, 2))
                changed[key] = (old, d[key])
                pool = d[key] if pool is None else min(pool, d[key])
        if isinstance(d.get('neg_num'), int):
            old = d['neg_num']
            new = min(n - 1, scaled(old))
            if pool is not None:
                new = min(new, pool)
            d['neg_num'] = new
            changed['neg_num'] = (old, new)
        if isinstance(d.get('n_background'), int):
            old = d['n_background']
            d['n_background'] = min(n, max(scaled(old), 5))
            changed['n_background'] = (old, d['n_background'])

    walk_dicts(model, first_pass)

    def heads(d):
        if d.get('num_classes') in cluster_ks:
            old = d['num_classes']
            d['num_classes'] = scaled(old, 2)
            changed['num_classes'] = (old, d['num_classes'])

    walk_dicts(model, heads)
    return {k: list(v) for k, v in changed.items()}


def load_config(path_or_pkg: str):
    """``Config.fromfile`` of a file of this repository or of a package
    config (``'mmpretrain::simclr/...py'``, through a one-line child file,
    as our BSIM configs inherit them)."""
    import tempfile

    from mmengine.config import Config
    if '::' not in path_or_pkg:
        path = path_or_pkg if osp.isabs(path_or_pkg) else osp.join(
            ROOT, path_or_pkg)
        return Config.fromfile(path)
    with tempfile.TemporaryDirectory() as d:
        child = osp.join(d, 'gpu_check_child.py')
        with open(child, 'w') as f:
            f.write(f'_base_ = {path_or_pkg!r}\n')
        cfg = Config.fromfile(child)
    # MMEngine tags every dict inherited from a package config with
    # ``_scope_``; the dataloader builder passes collate_fn's keys on to
    # the function, so restate it (as this repository's BSIM configs do)
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dl = cfg.get(key)
        if dl and isinstance(dl.get('collate_fn'), dict):
            dl['collate_fn'] = dict(type=dl['collate_fn']['type'])
    return cfg


def no_validation(cfg) -> None:
    """Drop validation / test loops (the kit measures training)."""
    for key in ('val_cfg', 'val_dataloader', 'val_evaluator', 'test_cfg',
                'test_dataloader', 'test_evaluator'):
        if key in cfg:
            cfg[key] = None
    if cfg.get('train_cfg'):
        cfg.train_cfg.pop('val_interval', None)
        cfg.train_cfg.pop('val_begin', None)


def quiet(cfg, work_dir: str, name: str, seed: int = 0) -> None:
    cfg.work_dir = work_dir
    cfg.experiment_name = name
    cfg.log_level = 'WARNING'
    cfg.randomness = dict(seed=seed, deterministic=False)
    hooks = cfg.setdefault('default_hooks', {})
    hooks['logger'] = dict(type='LoggerHook', interval=10**6)
    for h in cfg.get('custom_hooks', None) or []:
        if 'progress' in _hook_args(h.get('type')):
            h['progress'] = False


@functools.lru_cache(maxsize=None)
def _hook_args(type_name) -> tuple:
    import inspect

    from mmssl_ext.registry import HOOKS
    if not isinstance(type_name, str):
        return ()
    cls = HOOKS.get(type_name)
    if cls is None:
        return ()
    return tuple(inspect.signature(cls.__init__).parameters)


# ---------------------------------------------------------------------------
# state capture and comparison
# ---------------------------------------------------------------------------
def to_cpu_tree(obj):
    """Detached CPU copies of every tensor in a nested structure."""
    import torch
    if isinstance(obj, torch.Tensor):
        return obj.detach().to('cpu', copy=True)
    if isinstance(obj, dict):
        return {k: to_cpu_tree(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_cpu_tree(v) for v in obj)
    return copy.deepcopy(obj)


def flatten(obj, prefix: str = '') -> Dict[str, Any]:
    out = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(flatten(v, f'{prefix}{k}.'))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            out.update(flatten(v, f'{prefix}{i}.'))
    else:
        out[prefix[:-1]] = obj
    return out


def diff_states(a: Dict[str, Any], b: Dict[str, Any],
                limit: int = 12) -> List[str]:
    """Keys whose values differ (tensors: exact equality, shape, dtype;
    floats: exact, NaN == NaN), plus keys present on one side only."""
    import torch
    bad = []
    for k in sorted(set(a) | set(b)):
        if k not in a or k not in b:
            bad.append(f'{k}: only in {"first" if k in a else "second"}')
            continue
        x, y = a[k], b[k]
        if isinstance(x, torch.Tensor) or isinstance(y, torch.Tensor):
            if not (isinstance(x, torch.Tensor)
                    and isinstance(y, torch.Tensor)):
                bad.append(f'{k}: tensor vs {type(y).__name__}')
            elif x.shape != y.shape or x.dtype != y.dtype:
                bad.append(f'{k}: {tuple(x.shape)}/{x.dtype} vs '
                           f'{tuple(y.shape)}/{y.dtype}')
            elif not torch.equal(x.cpu(), y.cpu()):
                if x.is_floating_point():
                    d = (x.cpu().double() - y.cpu().double()).abs().max()
                    bad.append(f'{k}: values differ (max |diff| '
                               f'{float(d):.3g})')
                else:
                    bad.append(f'{k}: values differ')
        elif isinstance(x, float) and isinstance(y, float):
            if not (x == y or (math.isnan(x) and math.isnan(y))):
                bad.append(f'{k}: {x} vs {y}')
        elif x != y:
            bad.append(f'{k}: {x!r} vs {y!r}')
        if len(bad) >= limit:
            bad.append('...')
            break
    return bad


def tensors_of_module(model) -> Dict[str, Any]:
    """Every tensor a module tree holds: parameters, buffers, and tensors
    kept as plain attributes (not moved by ``.to()`` nor saved in a
    checkpoint: a hazard worth listing)."""
    import torch
    out = {}
    for name, p in model.named_parameters():
        out[name] = p
    for name, b in model.named_buffers():
        out[name] = b
    for mname, m in model.named_modules():
        for attr, v in vars(m).items():
            if attr.startswith('_') or not isinstance(v, torch.Tensor):
                continue
            out[f'{mname}.{attr}' if mname else attr] = v
    return out


def unregistered_tensors(model) -> Dict[str, str]:
    """``{path: device}`` of tensors held as plain module attributes."""
    import torch
    out = {}
    for mname, m in model.named_modules():
        for attr, v in vars(m).items():
            if attr.startswith('_') or not isinstance(v, torch.Tensor):
                continue
            out[f'{mname}.{attr}' if mname else attr] = str(v.device)
    return out


def hook_tensors(runner) -> Dict[str, str]:
    """``{hook.attr: device}`` of tensors held directly by the hooks."""
    import torch
    out = {}
    for h in runner.hooks:
        for attr, v in vars(h).items():
            if isinstance(v, torch.Tensor):
                out[f'{type(h).__name__}.{attr}'] = str(v.device)
    return out


def env_info(mode: str) -> Dict[str, Any]:
    import platform
    import subprocess

    import torch
    info = dict(python=platform.python_version(), torch=torch.__version__,
                cuda_runtime=torch.version.cuda,
                cuda_available=torch.cuda.is_available(),
                cpu_count=os.cpu_count())
    if mode == 'cuda' and torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        info.update(gpu=p.name, gpu_mem_gib=round(p.total_memory / 2**30, 1),
                    cudnn=torch.backends.cudnn.version(),
                    tf32_matmul=torch.backends.cuda.matmul.allow_tf32,
                    tf32_cudnn=torch.backends.cudnn.allow_tf32)
    for mod in ('mmengine', 'mmcv', 'mmpretrain', 'mmssl_ext'):
        try:
            m = importlib.import_module(mod)
            info[mod] = m.__version__
            info[f'{mod} from'] = osp.dirname(m.__file__)
        except Exception as e:  # noqa: B902
            info[mod] = f'unavailable ({type(e).__name__}: {e})'
    blocked = [f for f in sys.meta_path if isinstance(f, _ForbidImports)]
    for mod in ('mmcv.ops', 'mmdet', 'faiss'):
        if blocked and blocked[0].find_spec(mod) is not None:
            info[f'{mod} available'] = 'blocked for the run'
            continue
        try:
            # mmcv-lite ships the Python files of mmcv.ops but not the
            # compiled mmcv._ext they load
            spec = 'mmcv._ext' if mod == 'mmcv.ops' else mod
            info[f'{mod} available'] = importlib.util.find_spec(
                spec) is not None
        except Exception as e:  # noqa: B902 - broken parent package
            info[f'{mod} available'] = f'no ({type(e).__name__})'
    try:
        info['git_commit'] = subprocess.run(
            ['git', 'rev-parse', '--short', 'HEAD'], cwd=ROOT,
            capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception:  # noqa: B902
        info['git_commit'] = None
    return info
