"""A config whose data is missing stops before anything is built, naming
the config key (data_root) and the documentation section on the layout."""
import os
import os.path as osp
import subprocess
import sys

import pytest
from mmengine.config import Config

from mmssl_ext.utils.data_check import (DATA_DOCS, MissingDataError,
                                        check_data_roots, data_root_problems)

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))


def _cfg(**loaders):
    return Config(dict(loaders))


def _imagenet(root, **kw):
    return dict(dataset=dict(type='ImageNet', data_root=root, split='train',
                             pipeline=[dict(type='PackInputs')], **kw))


def test_missing_root_names_the_key(tmp_path):
    root = str(tmp_path / 'imagenet') + '/'
    cfg = _cfg(train_dataloader=_imagenet(root))
    (problem, ) = data_root_problems(cfg)
    assert problem.startswith('train_dataloader.dataset.data_root: ')
    assert repr(root) in problem
    with pytest.raises(MissingDataError) as e:
        check_data_roots(cfg)
    assert 'train_dataloader.dataset.data_root' in str(e.value)
    assert DATA_DOCS in str(e.value) and '2. Data' in DATA_DOCS


def test_root_present_split_folder_missing(tmp_path):
    (tmp_path / 'imagenet' / 'val').mkdir(parents=True)
    cfg = _cfg(train_dataloader=_imagenet(str(tmp_path / 'imagenet')))
    (problem, ) = data_root_problems(cfg)
    assert problem.startswith('train_dataloader.dataset.data_prefix: ')
    assert osp.join('imagenet', 'train') in problem
    (tmp_path / 'imagenet' / 'train').mkdir()
    assert data_root_problems(cfg) == []
    check_data_roots(cfg)
    # an annotation list named by the config must exist too
    cfg = _cfg(train_dataloader=_imagenet(str(tmp_path / 'imagenet'),
                                          ann_file='meta/train.txt'))
    (problem, ) = data_root_problems(cfg)
    assert problem.startswith('train_dataloader.dataset.ann_file: ')


def test_wrapped_dataset_and_val_loader_keys(tmp_path):
    inner = _imagenet(str(tmp_path / 'nowhere'))['dataset']
    cfg = _cfg(
        train_dataloader=dict(dataset=dict(type='BoxedDataset',
                                           dataset=inner)),
        val_dataloader=dict(dataset=dict(type='ImageNet', split='val',
                                         data_root=str(tmp_path / 'v'))),
        test_dataloader=dict(dataset=dict(type='ImageNet', split='val',
                                          data_root=str(tmp_path / 't'))))
    keys = [p.split(':')[0] for p in data_root_problems(cfg)]
    # the test loader is tools/test.py's business, not training's
    assert keys == ['train_dataloader.dataset.dataset.data_root',
                    'val_dataloader.dataset.data_root']
    keys = [p.split(':')[0] for p in data_root_problems(
        cfg, loaders=('test_dataloader', ))]
    assert keys == ['test_dataloader.dataset.data_root']


def test_downloading_and_embedded_data_sets_are_not_checked(tmp_path):
    cfg = _cfg(
        train_dataloader=dict(dataset=dict(
            type='CIFAR10', data_root=str(tmp_path / 'cifar10'),
            split='train')),
        val_dataloader=dict(dataset=dict(type='DigitsDataset',
                                         split='val')))
    assert data_root_problems(cfg) == []


@pytest.mark.parametrize('config', [
    'configs/interclr_r50.py',
    'configs/ccrop/ccrop-simclr_resnet18-cifar_1xb512-coslr-500e_stl10.py',
    'configs/cld/cld-npid_resnet18-cifar_1xb256-coslr-200e_cifar10.py',
    'configs/mocov2/mocov2_resnet18-cifar_1xb64-coslr-20e_digits.py'])
def test_recipes(config, tmp_path, monkeypatch):
    """From a folder without data/: the file-reading recipes are reported,
    CIFAR (downloads itself) and the digits (embedded) are not."""
    cfg = Config.fromfile(osp.join(ROOT, config))
    monkeypatch.chdir(tmp_path)
    problems = data_root_problems(cfg)
    if 'in1k' in config or 'interclr_r50' in config or 'stl10' in config:
        assert problems and all('data_root' in p for p in problems)
    else:
        assert problems == []


def test_train_py_stops_before_building_anything(tmp_path):
    """README's headline command without ImageNet: one error naming the key
    and the docs section, exit status 2, no traceback, no work directory."""
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1')
    proc = subprocess.run(
        [sys.executable, osp.join(ROOT, 'tools', 'train.py'),
         osp.join(ROOT, 'configs', 'interclr_r50.py'),
         '--work-dir', str(tmp_path / 'work')],
        cwd=str(tmp_path), env=env, capture_output=True, text=True,
        timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert 'train_dataloader.dataset.data_root' in proc.stderr
    assert "'data/imagenet/'" in proc.stderr
    assert 'section "2. Data"' in proc.stderr
    assert 'Traceback' not in proc.stderr
    assert not (tmp_path / 'work').exists()
