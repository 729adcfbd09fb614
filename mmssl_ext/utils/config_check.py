"""Check a config against the constructors of this package's classes before
anything is built.

A misspelled argument (``num_neighbors`` for ``InvP(num_neighbours=...)``)
otherwise ends in a bare ``TypeError: __init__() got an unexpected keyword
argument`` raised deep inside ``Runner.__init__``, after hundreds of lines
of environment and config log. :func:`check_config_arguments` walks the
config once, resolves every ``type`` the way the Runner will (the config's
``default_scope``, ``scope.Name`` prefixes, ``custom_imports``), and for
every class defined in ``mmssl_ext`` compares the given keys with the
arguments its constructor accepts (following ``**kwargs`` up the MRO). It
raises :class:`UnknownConfigKeyError` naming the config path, the class,
the unknown key and the closest valid names (``difflib``). A ``type`` name
that resolves nowhere but is close to one of this package's names gets the
same "did you mean". Everything else (upstream classes, values) is left to
the builders.

``tools/train.py`` and ``tools/test.py`` call it before the Runner.
"""
import difflib
import inspect
from typing import List, Optional, Set, Tuple

__all__ = ['UnknownConfigKeyError', 'accepted_arguments',
           'check_config_arguments', 'find_unknown_arguments']


class UnknownConfigKeyError(TypeError):
    """A config passes an argument (or names a type) that does not exist."""


#: top-level config fields -> registry name in mmengine.registry
_TOP = dict(model='MODELS', custom_hooks='HOOKS', default_hooks='HOOKS',
            train_cfg='LOOPS', val_cfg='LOOPS', test_cfg='LOOPS',
            train_dataloader=None, val_dataloader=None, test_dataloader=None,
            val_evaluator='METRICS', test_evaluator='METRICS',
            param_scheduler='PARAM_SCHEDULERS',
            optim_wrapper='OPTIM_WRAPPERS', visualizer='VISUALIZERS',
            log_processor='LOG_PROCESSORS')
#: nested keys that switch the registry (a ``*dataloader`` key: to none)
_NESTED = dict(dataset='DATASETS', datasets='DATASETS',
               pipeline='TRANSFORMS', transforms='TRANSFORMS',
               sampler='DATA_SAMPLERS', batch_sampler='DATA_SAMPLERS',
               optimizer='OPTIMIZERS', vis_backends='VISBACKENDS',
               data_preprocessor='MODELS')
#: nested keys whose dicts are not registry objects of ours
_SKIP = ('init_cfg', '_scope_')


def _keywords(params) -> Tuple[Set[str], bool]:
    """The names ``params`` (``inspect.Parameter``) accept as keywords, and
    whether one of them is ``**kwargs``."""
    return ({p.name for p in params
             if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)},
            any(p.kind == p.VAR_KEYWORD for p in params))


def accepted_arguments(cls) -> Optional[Set[str]]:
    """Keyword arguments ``cls(...)`` accepts: the named parameters of its
    ``__init__`` and, while a constructor takes ``**kwargs``, those of the
    next ``__init__`` up the MRO, or of the class a constructor declares it
    hands them to (``kwargs_of``; a registered function: its parameters).
    None if the chain stays open."""
    if inspect.isfunction(cls):  # a registered builder (ComposedSSL)
        names, var_kw = _keywords(inspect.signature(cls).parameters.values())
        return None if var_kw else names
    import torch.nn as nn
    names: Set[str] = set()
    for klass in inspect.getmro(cls):
        if klass in (object, nn.Module):  # they end a ``**kwargs`` chain
            return names
        init = klass.__dict__.get('__init__')
        if init is None:
            continue
        try:
            params = list(inspect.signature(init).parameters.values())[1:]
        except (TypeError, ValueError):  # builtins without a signature
            return None
        named, var_kw = _keywords(params)
        names |= named
        if not var_kw:
            return names
        target = klass.__dict__.get('kwargs_of')
        if target is not None:
            rest = accepted_arguments(target)
            return None if rest is None else names | rest
    return None


def _ours(cls) -> bool:
    return (isinstance(cls, type) or inspect.isfunction(cls)) and (
        cls.__module__ or '').split('.')[0] == 'mmssl_ext'


def _resolve(registry_name: str, type_name, scope: str):
    """The class ``type_name`` names in ``registry_name`` under ``scope``
    (as the Runner's builders resolve it), or None."""
    if isinstance(type_name, type):
        return type_name
    if not isinstance(type_name, str):
        return None
    import mmengine.registry as mreg
    from mmengine.registry import DefaultScope
    root = getattr(mreg, registry_name)
    try:
        with DefaultScope.overwrite_default_scope(scope):
            with root.switch_scope_and_registry(None) as reg:
                return reg.get(type_name)
    except Exception:  # noqa: BLE001 - unknown scope etc.: not ours to judge
        return None


def _our_names(registry_name: str) -> List[str]:
    import mmssl_ext.registry as ours
    reg = getattr(ours, registry_name)
    reg.import_from_location()
    return sorted(reg.module_dict)


def _suggest(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=3, cutoff=0.6)
    if not close:
        return ''
    return '; did you mean ' + ' or '.join(f"'{c}'" for c in close) + '?'


def find_unknown_arguments(cfg, scope: Optional[str] = None) -> List[str]:
    """One message per unknown argument / type of this package's classes
    in ``cfg`` (an mmengine ``Config`` or dict)."""
    if scope is None:
        scope = cfg.get('default_scope', None) or 'mmssl_ext'
    problems: List[str] = []

    def visit(node, path: str, registry: Optional[str]):
        if isinstance(node, (list, tuple)):
            for i, item in enumerate(node):
                visit(item, f'{path}[{i}]', registry)
            return
        if not isinstance(node, dict):
            return
        if 'type' in node and registry is not None:
            check(node, path, registry)
        for key, value in node.items():
            if key not in _SKIP:  # a dataloader dict has no type of its own
                visit(value, f'{path}.{key}', None if key.endswith(
                    'dataloader') else _NESTED.get(key, registry))

    def check(node: dict, path: str, registry: str):
        t = node['type']
        cls = _resolve(registry, t, node.get('_scope_', scope))
        if cls is None:
            if isinstance(t, str):
                name = t.split('.')[-1]
                ours = _our_names(registry)
                hint = _suggest(name, ours)
                if hint and name not in ours:
                    problems.append(
                        f"{path}: type '{t}' is not registered{hint}")
            return
        accepted = accepted_arguments(cls) if _ours(cls) else None
        if accepted is None:
            return
        for key in node:
            if key == 'type' or key.startswith('_') or key in accepted:
                continue
            hint = _suggest(key, accepted)
            problems.append(
                f"{path} ({cls.__name__}): unknown argument '{key}'{hint} "
                f'({cls.__name__} accepts: {", ".join(sorted(accepted))})')

    for field, registry in _TOP.items():
        # a dataloader (registry None) has no type of its own; a dict of
        # default hooks has none either: its values are visited as hooks
        visit(cfg.get(field, None), field, registry)
    return problems


def check_config_arguments(cfg, scope: Optional[str] = None) -> None:
    """Raise :class:`UnknownConfigKeyError` listing every unknown argument
    (with "did you mean") of this package's classes in ``cfg``. Imports
    ``mmssl_ext`` and the config's ``custom_imports`` first."""
    import mmssl_ext  # noqa: F401  (registries)
    imports = cfg.get('custom_imports', None)
    if imports:
        from mmengine.utils import import_modules_from_strings
        import_modules_from_strings(**imports)
    problems = find_unknown_arguments(cfg, scope)
    if problems:
        raise UnknownConfigKeyError(
            'unknown config keys (nothing was built):\n  ' +
            '\n  '.join(problems))
