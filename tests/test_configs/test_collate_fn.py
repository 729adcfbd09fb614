"""Configs that inherit a package config (``mmpretrain::`` / ``mmdet::``)
get ``_scope_`` added to every inherited dict by MMEngine, and the
dataloader builder passes ``collate_fn``'s keys straight to the function:
such a config must restate its collate_fn (the BSIM ImageNet recipes
crashed at their first batch). Built exactly as ``Runner.build_dataloader``
does, then called on a two-sample batch."""
import glob
import os.path as osp
from functools import partial

import pytest
import torch

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
PACKAGE_BASED = sorted(
    p for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'),
                         recursive=True)
    if '_base_' not in p and '::' in open(p).read())


def test_package_based_configs_found():
    names = [osp.basename(p) for p in PACKAGE_BASED]
    assert 'bsim-simclr_resnet50_8xb32-coslr-200e_in1k.py' in names


@pytest.mark.parametrize('path', PACKAGE_BASED,
                         ids=[osp.basename(p) for p in PACKAGE_BASED])
def test_collate_fn_builds_and_runs(path):
    from mmengine.config import Config
    from mmengine.registry import FUNCTIONS, DefaultScope
    try:
        cfg = Config.fromfile(path)
    except (ImportError, ModuleNotFoundError, FileNotFoundError) as e:
        pytest.skip(f'base package not installed: {e}')
    batch = [dict(inputs=torch.zeros(2)), dict(inputs=torch.ones(2))]
    checked = 0
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dl = cfg.get(key)
        fn_cfg = dl.get('collate_fn') if dl else None
        if not isinstance(fn_cfg, dict):
            continue
        fn_cfg = dict(fn_cfg)
        with DefaultScope.overwrite_default_scope(
                cfg.get('default_scope', 'mmssl_ext')):
            fn = FUNCTIONS.get(fn_cfg.pop('type'))
        out = partial(fn, **fn_cfg)(batch)  # what Runner.build_dataloader does
        assert torch.equal(out['inputs'], torch.tensor([[0., 0.], [1., 1.]]))
        checked += 1
    if 'bsim' in osp.basename(path):
        assert checked >= 1  # the BSIM recipes define a train collate_fn
