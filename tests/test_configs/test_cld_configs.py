"""Every config of configs/cld/ parses and builds its model (no training),
and its views / schedule match what the algorithm expects."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

from mmssl_ext.registry import MODELS

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs', 'cld', '*.py')))


def _num_views(cfg):
    view = cfg.train_dataloader.dataset.pipeline[-2]
    assert view.type == 'MultiView'
    n = view.num_views
    return sum(n) if isinstance(n, (list, tuple)) else n


def test_configs_exist():
    names = {osp.basename(c) for c in CONFIGS}
    assert 'cld-mocov2_resnet50_8xb64-coslr-200e_in1k.py' in names
    assert len(names) == 8


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config_builds(path):
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmssl_ext'
    model = MODELS.build(cfg.model)
    name = type(model).__name__
    assert name in ('NPIDCLD', 'MoCoCLD')
    views = _num_views(cfg)
    if name == 'MoCoCLD':
        assert views == 3
        # MMEngine convention (weight of the new value): MoCo's m >= 0.99,
        # except the digits recipes' short-run m = 0.9 (their MoCo base's)
        limit = 0.1 if '_digits' in path else 0.01
        assert 0 < model.encoder_k.momentum <= limit
    elif len(model.branches):
        assert views == 2
        assert model.memory.momentum == 0.5
    else:
        assert views == 1  # the plain NPID baseline
    if len(model.branches):
        g = model.branches[0].head
        assert g.grouping == 'kmeans' and g.num_iters == 5
    base = osp.basename(path)
    if 'cifar' in base.split('_')[-1]:
        assert model.memory.length == 50000 if name == 'NPIDCLD' else True
        # 5 warm-up epochs from lr/100, then cosine, both per iteration
        warm, cos = cfg.param_scheduler
        assert warm.type == 'LinearLR' and warm.start_factor == 0.01
        assert warm.end == 5 and warm.convert_to_iter_based
        assert cos.type == 'CosineAnnealingLR' and cos.begin == 5
        assert cos.convert_to_iter_based and cos.eta_min == 1e-6
    if base.endswith('_digits.py') and name == 'NPIDCLD':
        assert model.memory.length == 4000
    expected = {
        'cld-npid_resnet18-cifar_1xb256-coslr-200e_cifar10.py': (128, 1.0),
        'cld-npid_resnet18-cifar_1xb256-coslr-200e_cifar100.py': (200, 1.0),
        'cld-moco_resnet18-cifar_1xb256-coslr-200e_cifar10.py': (200, 0.8),
        'cld-moco_resnet18-cifar_1xb128-coslr-200e_cifar100.py': (100, 0.25),
        'cld-mocov2_resnet50_8xb64-coslr-200e_in1k.py': (120, 0.25),
    }.get(base)
    if expected is not None:
        branch = model.branches[0]
        assert (branch.head.num_groups, branch.loss_weight) == expected
    if 'in1k' in base:
        assert model.branches[0].head.temperature == 0.4
        assert model.head.temperature == 0.2
        assert cfg.train_dataloader.batch_size == 64
        assert type(model.neck.group_proj).__name__ == 'NormedLinear'
