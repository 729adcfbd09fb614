import os

import pytest

# Tests run on 2 shared cores: keep intra-op threading small and stable.
os.environ.setdefault('OMP_NUM_THREADS', '1')

import torch  # noqa: E402

torch.set_num_threads(1)

import mmssl_ext  # noqa: E402,F401  (registries, checkpoint allow-list)

#: A tiny backbone for tests: CIFAR ResNet-18 stem, 4 base channels.
TINY_BACKBONE = dict(
    type='ResNet_CIFAR',
    depth=18,
    stem_channels=4,
    base_channels=4,
    norm_cfg=dict(type='BN'),
    zero_init_residual=False)
TINY_BACKBONE_OUT = 32


@pytest.fixture
def tiny_backbone():
    return dict(TINY_BACKBONE)


@pytest.fixture(autouse=True)
def _default_scope():
    """Each test starts in the mmssl_ext scope, as our configs do."""
    from mmengine.registry import DefaultScope
    name = f'test-{os.getpid()}-{id(object())}'
    DefaultScope.get_instance(name, scope_name='mmssl_ext')
    yield
