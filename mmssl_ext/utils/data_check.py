"""Data folders of a config checked before anything is built.

A recipe whose data is not where the config says fails deep inside the data
set's constructor, after the Runner has logged its environment and built
the model (``FileNotFoundError: ... 'data/imagenet/train'``).
:func:`check_data_roots` looks at every data set of the config's data
loaders first and names the config key to change and the documentation
section on the data layout.

Only data sets that read files are checked: those with a ``data_root``.
CIFAR data sets download their files on first use, and the embedded digits
have no folder, so neither is checked.
"""
import os.path as osp
from typing import Iterator, List, Tuple

#: where the data layout is described (relative to the repository)
DATA_DOCS = 'docs/getting_started.md, section "2. Data"'
#: data set types that download into ``data_root`` on first use
DOWNLOADING_TYPES = ('CIFAR10', 'CIFAR100', 'MNIST', 'FashionMNIST')
#: the loaders a training run builds (the test loader only ``tools/test.py``)
TRAIN_LOADERS = ('train_dataloader', 'val_dataloader')


class MissingDataError(FileNotFoundError):
    """A data folder or annotation file named by the config is missing."""


def _datasets(node, key: str) -> Iterator[Tuple[str, dict]]:
    """``(config key, dataset dict)`` of a loader's data set and of the data
    sets it wraps (``dataset``, ``datasets``, ``label_dataset`` ...)."""
    if not isinstance(node, dict):
        return
    yield key, node
    for name, value in node.items():
        if name == 'pipeline':
            continue
        if isinstance(value, dict) and 'type' in value and (
                'dataset' in name or 'data_root' in value):
            yield from _datasets(value, f'{key}.{name}')
        elif isinstance(value, (list, tuple)) and 'dataset' in name:
            for i, item in enumerate(value):
                yield from _datasets(item, f'{key}.{name}.{i}')


def _type_name(ds: dict) -> str:
    t = ds.get('type', '')
    return (t if isinstance(t, str) else getattr(t, '__name__', str(t))
            ).split('.')[-1]


def _expected_paths(ds: dict) -> List[Tuple[str, str]]:
    """``(key, path)`` pairs a file-reading data set needs, relative paths
    joined to ``data_root`` as MMEngine's ``BaseDataset`` does."""
    root = ds['data_root']
    out = [('data_root', root)]
    prefix = ds.get('data_prefix')
    if isinstance(prefix, dict):
        prefix = prefix.get('img_path') or prefix.get('img')
    if not prefix and isinstance(ds.get('split'), str) and ds['split']:
        prefix = ds['split']  # MMPretrain's ImageNet: images in <root>/<split>
    if isinstance(prefix, str) and prefix:
        out.append(('data_prefix', osp.join(root, prefix)))
    ann = ds.get('ann_file')
    if isinstance(ann, str) and ann:
        out.append(('ann_file', osp.join(root, ann)))
    return out


def data_root_problems(cfg, loaders=TRAIN_LOADERS) -> List[str]:
    """One line per missing folder or file of the data sets of ``loaders``,
    naming its config key."""
    problems = []
    for loader in loaders:
        loader_cfg = cfg.get(loader, None)
        if not isinstance(loader_cfg, dict) or not isinstance(
                loader_cfg.get('dataset'), dict):
            continue
        for key, ds in _datasets(loader_cfg['dataset'],
                                 f'{loader}.dataset'):
            root = ds.get('data_root')
            if not isinstance(root, str) or not root or \
                    _type_name(ds) in DOWNLOADING_TYPES or ds.get('download'):
                continue
            for field, path in _expected_paths(ds):
                if osp.exists(path):
                    continue
                problems.append(
                    f'{key}.{field}: {path!r} does not exist (from '
                    f'{osp.abspath(".")}); {key}.data_root = {root!r}')
                break  # the first missing level is the one to fix
    return problems


def check_data_roots(cfg, loaders=TRAIN_LOADERS) -> None:
    """Raise :class:`MissingDataError` naming every data folder or file of
    the data sets of ``loaders`` that is missing, the key to set and where
    the layout is described."""
    problems = data_root_problems(cfg, loaders)
    if problems:
        raise MissingDataError(
            'the data of this config is not where it says:\n  ' +
            '\n  '.join(problems) + '\nPut (or symlink) the data set there '
            f'(layout: {DATA_DOCS}) or point the config at it, e.g. '
            '--cfg-options <key>.data_root=/path/to/data/')
