"""Dump every config's resolved form, and compare two dumps.

A config refactor (new ``_base_`` files, ``mmpretrain::`` inheritance, moved
pipelines) must leave what the Runner builds unchanged. This tool makes that
checkable::

    # before the change (e.g. on a checkout of the old commit)
    python tools/misc/resolve_configs.py dump configs /tmp/before
    # after the change
    python tools/misc/resolve_configs.py dump configs /tmp/after
    python tools/misc/resolve_configs.py compare /tmp/before /tmp/after

``dump`` writes ``Config.fromfile(path).to_dict()`` of every config under the
folder (``_base_`` folders excluded) as sorted JSON, one file per config.
``compare`` prints, per config, the key paths that differ, split into

* keys the Runner and the tools read (model, data loaders, schedule, loops,
  hooks, runtime): a difference here changes what is trained;
* ``_scope_`` entries only (added by ``mmpretrain::`` bases: which registry
  builds an object, same class);
* helper variables of the config files (``view_pipeline``, ``dataset_type``,
  ...): not read by the Runner.

It exits with status 1 when any Runner key differs, so it can guard a
refactor that should change nothing.
"""
import argparse
import json
import os
import os.path as osp
import sys
from typing import Dict, Iterator, List, Tuple

#: top-level keys read by mmengine's Runner.from_cfg, tools/ and the hooks
RUNNER_KEYS = {
    'model', 'data_preprocessor', 'train_dataloader', 'val_dataloader',
    'test_dataloader', 'train_cfg', 'val_cfg', 'test_cfg', 'optim_wrapper',
    'param_scheduler', 'val_evaluator', 'test_evaluator', 'default_hooks',
    'custom_hooks', 'auto_scale_lr', 'default_scope', 'custom_imports',
    'env_cfg', 'log_processor', 'log_level', 'visualizer', 'load_from',
    'resume', 'randomness', 'launcher', 'model_wrapper_cfg', 'work_dir',
    'experiment_name', 'resume_from', 'cfg'
}


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return repr(obj)


def config_files(folder: str) -> List[str]:
    out = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d != '_base_')
        out += [osp.join(root, f) for f in sorted(files) if f.endswith('.py')]
    return out


def dump(folder: str, out_dir: str) -> int:
    from mmengine.config import Config
    failures = 0
    for path in config_files(folder):
        rel = osp.relpath(path, folder)
        target = osp.join(out_dir, rel[:-3] + '.json')
        os.makedirs(osp.dirname(target), exist_ok=True)
        try:
            resolved = _jsonable(Config.fromfile(path).to_dict())
        except Exception as e:  # report and go on: a dump is a survey
            failures += 1
            resolved = {'__error__': f'{type(e).__name__}: {e}'}
            print(f'{rel}: {resolved["__error__"]}', file=sys.stderr)
        with open(target, 'w') as f:
            json.dump(resolved, f, indent=1, sort_keys=True)
    print(f'dumped {len(config_files(folder))} configs to {out_dir} '
          f'({failures} failed)')
    return failures


def _flatten(obj, prefix='') -> Iterator[Tuple[str, object]]:
    if isinstance(obj, dict):
        if not obj:
            yield prefix, {}
        for k, v in obj.items():
            yield from _flatten(v, f'{prefix}.{k}' if prefix else k)
    elif isinstance(obj, list):
        if not obj:
            yield prefix, []
        for i, v in enumerate(obj):
            yield from _flatten(v, f'{prefix}[{i}]')
    else:
        yield prefix, obj


def diff(a: dict, b: dict) -> Dict[str, List[str]]:
    fa, fb = dict(_flatten(a)), dict(_flatten(b))
    groups = {'runner': [], 'scope': [], 'helper': []}
    for key in sorted(fa.keys() | fb.keys()):
        va, vb = fa.get(key, '<absent>'), fb.get(key, '<absent>')
        if va == vb:
            continue
        top = key.split('.')[0].split('[')[0]
        line = f'{key}: {va!r} -> {vb!r}'
        if key.endswith('._scope_') or key == '_scope_':
            groups['scope'].append(line)
        elif top in RUNNER_KEYS:
            groups['runner'].append(line)
        else:
            groups['helper'].append(line)
    return groups


def compare(before: str, after: str, verbose: bool = True) -> int:
    names_a = {osp.relpath(p, before) for p in _jsons(before)}
    names_b = {osp.relpath(p, after) for p in _jsons(after)}
    changed = 0
    for name in sorted(names_a - names_b):
        print(f'REMOVED {name}')
    for name in sorted(names_b - names_a):
        print(f'ADDED   {name}')
    for name in sorted(names_a & names_b):
        with open(osp.join(before, name)) as f:
            a = json.load(f)
        with open(osp.join(after, name)) as f:
            b = json.load(f)
        groups = diff(a, b)
        if not any(groups.values()):
            continue
        counts = ', '.join(f'{len(v)} {k}' for k, v in groups.items() if v)
        print(f'{name[:-5]}: {counts}')
        changed += bool(groups['runner'])
        if verbose:
            for kind in ('runner', 'scope', 'helper'):
                for line in groups[kind]:
                    print(f'    [{kind}] {line}')
    print(f'{len(names_a & names_b)} configs compared, {changed} with '
          'Runner-visible differences')
    return 1 if changed else 0


def _jsons(folder: str) -> List[str]:
    out = []
    for root, _, files in os.walk(folder):
        out += [osp.join(root, f) for f in files if f.endswith('.json')]
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = p.add_subparsers(dest='cmd', required=True)
    d = sub.add_parser('dump', help='dump resolved configs as JSON')
    d.add_argument('folder')
    d.add_argument('out_dir')
    c = sub.add_parser('compare', help='compare two dumps')
    c.add_argument('before')
    c.add_argument('after')
    c.add_argument('--summary', action='store_true',
                   help='one line per config, no key paths')
    args = p.parse_args(argv)
    if args.cmd == 'dump':
        return 1 if dump(args.folder, args.out_dir) else 0
    return compare(args.before, args.after, verbose=not args.summary)


if __name__ == '__main__':
    sys.exit(main())
