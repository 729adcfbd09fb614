"""mmssl_ext.utils.config_check: unknown arguments of this package's classes
are reported with "did you mean" before anything is built (tools/train.py,
tools/test.py), and no shipped config is flagged."""
import glob
import importlib.util
import os.path as osp
import sys

import pytest
from mmengine.config import Config

from mmssl_ext.utils.config_check import (UnknownConfigKeyError,
                                          accepted_arguments,
                                          check_config_arguments,
                                          find_unknown_arguments)

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
INVP_DIGITS = osp.join(ROOT, 'configs', 'invp',
                       'invp_resnet18-cifar_1xb64-coslr-20e_digits.py')


def test_accepted_arguments_follow_kwargs_up_the_mro():

    class Base:

        def __init__(self, a, b=1):
            pass

    class Child(Base):

        def __init__(self, c, **kwargs):
            super().__init__(**kwargs)

    class GrandChild(Child):  # no __init__ of its own
        pass

    class Open:

        def __init__(self, **kwargs):
            pass

    assert accepted_arguments(Child) == {'a', 'b', 'c'}
    assert accepted_arguments(GrandChild) == {'a', 'b', 'c'}
    # **kwargs that reach object.__init__ accept nothing more
    assert accepted_arguments(Open) == set()
    from mmssl_ext.datasets import DigitsDataset
    from mmssl_ext.models import InvP, NeighbourMemory
    got = accepted_arguments(DigitsDataset)
    assert {'split', 'img_size', 'pipeline', 'test_mode'} <= got
    assert accepted_arguments(InvP) >= {'memory', 'backbone', 'lambda_inv'}
    # NeighbourMemory's **kwargs reach FeatureMemory's arguments
    assert accepted_arguments(NeighbourMemory) >= {
        'num_neighbours', 'length', 'feat_dim', 'momentum', 'init', 'seed'}
    assert 'num_neighbors' not in accepted_arguments(NeighbourMemory)


def test_misspelled_keys_get_did_you_mean():
    cfg = Config.fromfile(INVP_DIGITS)
    cfg.model.memory['num_neighbors'] = cfg.model.memory.pop(
        'num_neighbours')
    cfg.train_dataloader.dataset['splt'] = 'train'
    cfg.custom_hooks = [dict(type='ContrastiveCropHook', warmup_epoch=1)]
    with pytest.raises(UnknownConfigKeyError) as err:
        check_config_arguments(cfg)
    lines = str(err.value).splitlines()
    assert len(lines) == 4  # header + one line per problem
    assert ("model.memory (NeighbourMemory): unknown argument "
            "'num_neighbors'; did you mean 'num_neighbours'?") in lines[1]
    assert "train_dataloader.dataset (DigitsDataset): unknown argument " \
        "'splt'; did you mean 'split'?" in str(err.value)
    assert "custom_hooks[0] (ContrastiveCropHook): unknown argument " \
        "'warmup_epoch'; did you mean 'warmup_epochs'?" in str(err.value)
    # a misspelled type close to one of ours
    cfg = Config.fromfile(INVP_DIGITS)
    cfg.model.type = 'InterCLRMoco'
    assert find_unknown_arguments(cfg) == [
        "model: type 'InterCLRMoco' is not registered; did you mean "
        "'InterCLRMoCo'?"]


def test_upstream_classes_and_scoped_types_are_left_alone():
    cfg = Config(dict(
        default_scope='mmssl_ext',
        model=dict(type='mmpretrain.MoCo', whatever=1,
                   backbone=dict(type='ResNet', depth=18)),
        custom_hooks=[dict(type='EMAHook', momentum=0.1)]))
    assert find_unknown_arguments(cfg) == []
    cfg = Config(dict(default_scope='mmpretrain', model=dict(
        type='mmssl_ext.InvP', lamda_inv=3)))
    (msg, ) = find_unknown_arguments(cfg)
    assert "'lamda_inv'; did you mean 'lambda_inv'" in msg


def test_no_shipped_config_is_flagged():
    configs = [f for f in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'),
                                    recursive=True)
               if '_base_' not in f and 'mmsegmentation' not in f]
    configs.append(osp.join(ROOT, 'tests', 'data', 'configs',
                            'mocov2_tiny_synthetic.py'))
    assert len(configs) > 50
    for path in configs:
        assert find_unknown_arguments(Config.fromfile(path)) == [], path


def _tool(name):
    spec = importlib.util.spec_from_file_location(
        f'_tool_{name}', osp.join(ROOT, 'tools', f'{name}.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_train_stops_before_the_runner(tmp_path, monkeypatch, capsys):
    work = tmp_path / 'w'
    monkeypatch.setattr(sys, 'argv', [
        'train.py', INVP_DIGITS, '--work-dir', str(work), '--cfg-options',
        'model.memory.num_neighbors=4'])
    with pytest.raises(SystemExit) as e:
        _tool('train').main()
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "unknown argument 'num_neighbors'; did you mean " \
        "'num_neighbours'?" in err
    assert len(err.splitlines()) <= 3
    assert not work.exists()  # no Runner, no log
