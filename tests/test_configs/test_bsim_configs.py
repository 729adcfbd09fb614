"""Every config of configs/bsim/ parses and builds its model (no training);
BSIM recipes keep their base recipe and switch only the algorithm."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

from mmssl_ext.registry import MODELS

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs', 'bsim', '*.py')))
KNOBS = dict(mix_mode='both', p_mixup=0.5, alpha=1.0, pairing='reverse',
             mixed_view='a', symmetric_mix=False, beta_weight=1.0)


def test_configs_exist():
    names = {osp.basename(c) for c in CONFIGS}
    for algo in ('mocov2', 'simclr', 'byol', 'simsiam'):
        assert any(n.startswith(f'bsim-{algo}_resnet50_') and
                   n.endswith('-200e_in1k.py') for n in names), algo
        assert f'bsim-{algo}_resnet18-cifar_1xb64-coslr-20e_digits.py' in \
            names
    for algo in ('simclr', 'byol', 'simsiam'):  # MoCo's is configs/mocov2/
        assert f'{algo}_resnet18-cifar_1xb64-coslr-20e_digits.py' in names
    for algo in ('mocov2', 'simclr'):
        assert (f'bsim-{algo}_resnet18-cifar_1xb512-coslr-1000e_cifar10.py'
                in names)
    assert len(names) == 13


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config_builds(path):
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmssl_ext'
    model = MODELS.build(cfg.model)
    name = type(model).__name__
    base = osp.basename(path)
    if base.startswith('bsim-'):
        assert name.startswith('BSIM')
        for k, v in KNOBS.items():
            assert cfg.model.mixture[k] == v, k
        assert model.branches[0].mixer.mix_mode == 'both'
        assert model.branches[0].mixer.alpha == 1.0
    else:
        assert name in ('SimCLR', 'BYOL', 'SimSiam')
    if 'in1k' in base:
        assert cfg.train_cfg.max_epochs == 200
        assert model.backbone.depth == 50
    if 'cifar' in base.split('_')[1]:
        assert type(model.backbone).__name__ == 'ResNet_CIFAR'
    if base.endswith('_digits.py'):
        assert cfg.train_dataloader.batch_size == 64
        assert cfg.train_dataloader.dataset.type == 'DigitsDataset'


@pytest.mark.parametrize('algo', ['simclr', 'byol', 'simsiam', 'mocov2'])
def test_digits_bsim_matches_its_baseline(algo):
    bsim = Config.fromfile(osp.join(
        ROOT, 'configs', 'bsim',
        f'bsim-{algo}_resnet18-cifar_1xb64-coslr-20e_digits.py'))
    folder = 'mocov2' if algo == 'mocov2' else 'bsim'
    base = Config.fromfile(osp.join(
        ROOT, 'configs', folder,
        f'{algo}_resnet18-cifar_1xb64-coslr-20e_digits.py'))
    for key in ('train_dataloader', 'optim_wrapper', 'param_scheduler',
                'train_cfg', 'val_cfg', 'randomness'):
        assert bsim[key] == base[key], key
    b, m = dict(bsim.model), dict(base.model)
    assert b.pop('type') == 'BSIM' + m.pop('type')
    assert b.pop('mixture') == KNOBS
    assert b == m


def _strip_scope(obj):
    """Drop the ``_scope_`` keys mmengine adds to ``mmpretrain::`` bases."""
    if isinstance(obj, dict):
        return {k: _strip_scope(v) for k, v in obj.items() if k != '_scope_'}
    if isinstance(obj, (list, tuple)):
        return [_strip_scope(v) for v in obj]
    return obj


@pytest.mark.parametrize('algo', ['mocov2', 'simclr', 'byol', 'simsiam'])
def test_in1k_follows_mmpretrain(algo):
    path = [c for c in CONFIGS
            if osp.basename(c).startswith(f'bsim-{algo}_resnet50_')][0]
    bsim = Config.fromfile(path)
    import mmpretrain
    base = Config.fromfile(
        osp.join(osp.dirname(mmpretrain.__file__), '.mim', 'configs', algo,
                 osp.basename(path)[len('bsim-'):]))
    for key in ('train_dataloader', 'optim_wrapper', 'param_scheduler',
                'train_cfg', 'custom_hooks'):
        assert _strip_scope(bsim.get(key)) == _strip_scope(base.get(key)), key
    b, m = _strip_scope(bsim.model.to_dict()), _strip_scope(
        base.model.to_dict())
    assert b.pop('type') == 'BSIM' + m.pop('type')
    assert b.pop('mixture') == KNOBS
    assert b == m
