"""Every config of configs/invp/ parses and its model builds (no training);
the recipes carry the authors' settings."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

from mmssl_ext.registry import MODELS

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs', 'invp', '*.py')))


def test_all_recipes_exist():
    names = {osp.basename(c) for c in CONFIGS}
    assert {
        'invp_resnet50_8xb16-coslr-800e_in1k.py',
        'invp_resnet50_8xb16-coslr-200e_in1k.py',
        'invp_resnet18-cifar_1xb128-coslr-800e_cifar10.py',
        'invp_resnet18-cifar_1xb128-coslr-800e_cifar100.py',
        'invp_resnet18-cifar_1xb64-coslr-20e_digits.py',
        'invp-npid-baseline_resnet18-cifar_1xb64-coslr-20e_digits.py',
    } <= names


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config_builds(path):
    cfg = Config.fromfile(path)
    model = cfg.model.to_dict() if hasattr(cfg.model, 'to_dict') else dict(
        cfg.model)
    assert model['type'] == 'InvP'
    # one view per image per iteration
    views = [t for t in cfg.train_dataloader.dataset.pipeline
             if t['type'] == 'MultiView']
    assert len(views) == 1 and views[0]['num_views'] == 1
    # the memory-bank monitor, except on the digits: there the bank covers
    # the validation images, so the shared protocol is used
    assert cfg.val_cfg.type == ('KNNValLoop' if '_digits' in path else
                                'MemoryBankKNNValLoop')
    assert (cfg.val_cfg.k, cfg.val_cfg.sigma) == (200, 0.07)
    assert cfg.default_hooks.checkpoint.save_best == 'knn/top1'
    assert cfg.model_wrapper_cfg.broadcast_buffers is False
    memory = model['memory']
    assert memory['type'] == 'NeighbourMemory' and memory['momentum'] == 0.5
    if memory['length'] > 100000:  # ImageNet: build a smaller bank
        memory['length'] = 8192
    built = MODELS.build(model)
    assert built.memory.bank.shape[0] == memory['length']


def _cfg(name):
    return Config.fromfile(osp.join(ROOT, 'configs', 'invp', name))


def test_authors_settings():
    in1k = _cfg('invp_resnet50_8xb16-coslr-800e_in1k.py')
    assert in1k.train_dataloader.batch_size * 8 == 128
    assert in1k.model.loss.temperature == 0.2
    assert in1k.model.loss.n_background == 4096
    assert (in1k.model.loss.diffusion_layer, in1k.model.loss.n_pos) == (3, 50)
    assert in1k.model.neck.type == 'MoCoV2Neck'
    assert in1k.train_cfg.max_epochs == 800
    assert in1k.optim_wrapper.optimizer.weight_decay == 1e-4
    assert in1k.model.ramp_epochs == 30 and in1k.model.lambda_inv == 0.6
    assert _cfg('invp_resnet50_8xb16-coslr-200e_in1k.py'
                ).train_cfg.max_epochs == 200
    c10 = _cfg('invp_resnet18-cifar_1xb128-coslr-800e_cifar10.py')
    c100 = _cfg('invp_resnet18-cifar_1xb128-coslr-800e_cifar100.py')
    assert (c10.model.loss.diffusion_layer, c10.model.loss.n_pos) == (3, 20)
    assert c100.model.loss.diffusion_layer == 4
    assert c100.train_dataloader.dataset.type == 'CIFAR100'
    assert c100.test_cfg.label_dataset.type == 'CIFAR100'
    for c in (c10, c100):
        assert c.model.backbone.type == 'ResNet_CIFAR'
        view = c.train_dataloader.dataset.pipeline[0]['transforms'][0]
        assert 'RandomFlip' not in [t['type'] for t in view]  # no flip
    digits = _cfg('invp_resnet18-cifar_1xb64-coslr-20e_digits.py')
    # chosen on the validation split: half the schedule (docs/digits.md)
    assert digits.model.ramp_epochs == 10
    assert digits.model.neck.norm_cfg == dict(type='BN1d')
    assert digits.model.loss.n_background == 328  # 4096 * 4000 / 50000
    base = _cfg('invp-npid-baseline_resnet18-cifar_1xb64-coslr-20e_digits.py')
    assert base.model.lambda_inv == 0.0
    assert base.model.loss == digits.model.loss
