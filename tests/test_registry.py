import pytest
from mmengine.registry import DATASETS as ROOT_DATASETS
from mmengine.registry import MODELS as ROOT_MODELS
from mmengine.registry import DefaultScope, Registry
from mmpretrain import registry as mmpt_registry

from mmssl_ext import registry as ours


def test_every_mmpretrain_node_has_a_child():
    mmpt_nodes = {k for k, v in vars(mmpt_registry).items()
                  if isinstance(v, Registry) and v.scope == 'mmpretrain'}
    assert mmpt_nodes == set(ours.ALL_REGISTRIES)
    for name, reg in ours.ALL_REGISTRIES.items():
        assert reg.scope == 'mmssl_ext'
        assert reg.parent is getattr(mmpt_registry, name), name
        assert reg.name == getattr(mmpt_registry, name).name
        assert reg._locations, f'{name} needs locations'


def _scoped(name):
    return DefaultScope.get_instance(f'{name}-{id(object())}',
                                     scope_name=name)


def test_our_scope_resolves_ours_and_mmpretrain_names():
    _scoped('mmssl_ext')
    ds = ROOT_DATASETS.build(dict(type='SyntheticImageDataset',
                                  num_samples=4, img_size=8))
    assert len(ds) == 4
    # a bare MMPretrain name resolves through the parent chain
    backbone = ROOT_MODELS.build(dict(type='ResNet_CIFAR', depth=18,
                                      base_channels=4, stem_channels=4))
    assert type(backbone).__name__ == 'ResNet_CIFAR'


def test_mmpretrain_scope_with_prefix():
    _scoped('mmpretrain')
    ds = ROOT_DATASETS.build(dict(type='mmssl_ext.SyntheticImageDataset',
                                  num_samples=3, img_size=8))
    assert len(ds) == 3


def test_mmpretrain_scope_with_scope_key():
    _scoped('mmpretrain')
    ds = ROOT_DATASETS.build(dict(_scope_='mmssl_ext',
                                  type='SyntheticImageDataset',
                                  num_samples=2, img_size=8))
    assert len(ds) == 2


def test_unknown_type_names_the_type():
    _scoped('mmssl_ext')
    with pytest.raises(KeyError, match='NoSuchDataset'):
        ROOT_DATASETS.build(dict(type='NoSuchDataset'))
