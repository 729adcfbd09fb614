"""tools/benchmarks/knn_eval.py: where the bank and test splits come from
(the full run is in test_transfer_chain.py)."""
import importlib.util
import os.path as osp

import pytest
from mmengine.config import Config

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))


def _tool():
    spec = importlib.util.spec_from_file_location(
        '_knn_eval', osp.join(ROOT, 'tools', 'benchmarks', 'knn_eval.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


ke = _tool()


def test_splits_from_the_knn_test_loop():
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'mocov2',
                                   'mocov2_resnet18-cifar_1xb64-coslr-20e_'
                                   'digits.py'))
    bank, query, src = ke.resolve_knn_loaders(cfg, batch_size=32)
    assert src.startswith('test_cfg')
    assert bank['dataset']['split'] == 'train'
    assert query['dataset']['split'] == 'test'
    assert bank['batch_size'] == query['batch_size'] == 32
    assert bank['dataset']['pipeline'] == [{'type': 'PackInputs'}]


def test_splits_derived_from_train_dataloader():
    cfg = Config(dict(
        train_dataloader=dict(
            batch_size=32, num_workers=4,
            dataset=dict(type='ImageNet', data_root='data/imagenet',
                         split='train', pipeline=[
                             dict(type='LoadImageFromFile'),
                             dict(type='MultiView', num_views=2,
                                  transforms=[[]]),
                             dict(type='PackInputs')]))))
    bank, query, src = ke.resolve_knn_loaders(cfg)
    assert bank['dataset']['split'] == 'train'
    assert query['dataset']['split'] == 'val'  # ImageNet's labelled split
    types = [t['type'] for t in query['dataset']['pipeline']]
    assert types == ['LoadImageFromFile', 'ResizeEdge', 'CenterCrop',
                     'PackInputs']
    assert bank['sampler'] == dict(type='DefaultSampler', shuffle=False)
    _, query, _ = ke.resolve_knn_loaders(cfg, test_split='test')
    assert query['dataset']['split'] == 'test'
    # a data set without splits needs an explicit kNN loop
    cfg.train_dataloader.dataset = dict(type='CustomDataset',
                                        data_root='x', pipeline=[])
    with pytest.raises(ValueError, match='KNNTestLoop'):
        ke.resolve_knn_loaders(cfg)
