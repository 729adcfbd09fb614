"""kNN evaluation loop and feature extraction with a real mmengine Runner."""
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from mmssl_ext.utils.extract import extract_features

CFG = osp.join(osp.dirname(__file__), '..', 'data', 'configs',
               'mocov2_tiny_synthetic.py')


def raw_pixels(model, inputs):
    return inputs.flatten(1)


def _runner(tmp_path, **val_cfg):
    cfg = Config.fromfile(CFG)
    cfg.work_dir = str(tmp_path)
    cfg.val_cfg.update(val_cfg)
    cfg.train_cfg = None
    cfg.optim_wrapper = None
    cfg.train_dataloader = None
    cfg.default_hooks.checkpoint = None
    cfg.experiment_name = f'knn-{id(object())}'
    return Runner.from_cfg(cfg)


def test_knn_loop_reaches_100_on_separable_pixels(tmp_path):
    # synthetic classes are prototypes + small noise: raw pixels separate them
    runner = _runner(tmp_path, k=5)
    # callables cannot live in a dumped config: set it on the built loop
    runner._val_loop = runner.build_val_loop(runner._val_loop)
    runner.val_loop.feature = raw_pixels
    metrics = runner.val()
    assert metrics['knn/top1'] == pytest.approx(100.0)
    assert metrics['knn/top5'] == pytest.approx(100.0)


def test_knn_loop_with_network_features_runs(tmp_path):
    runner = _runner(tmp_path)
    metrics = runner.val()
    assert 0.0 <= metrics['knn/top1'] <= 100.0
    assert set(metrics) == {'knn/top1', 'knn/top5'}


def test_extract_features_restores_dataset_order(tmp_path):
    runner = _runner(tmp_path)
    loader_cfg = copy.deepcopy(runner.cfg.val_dataloader)
    loader_cfg.sampler = dict(type='DefaultSampler', shuffle=True)
    loader_cfg.batch_size = 5  # 32 samples: a ragged last batch
    loader = Runner.build_dataloader(loader_cfg, seed=0)
    feats = extract_features(runner.model, loader,
                             feature=lambda m, x: x.mean((1, 2, 3))[:, None],
                             progress=False)
    ds = loader.dataset
    # expected: the normalised image mean of each sample, in dataset order
    pre = runner.model.data_preprocessor
    expected = torch.stack([
        ((ds[i]['inputs'].float() - pre.mean) /
         pre.std).mean() for i in range(len(ds))
    ])
    torch.testing.assert_close(feats.squeeze(1), expected, rtol=1e-5,
                               atol=1e-5)
    assert runner.model.training  # mode restored


def test_extract_features_rejects_partial_coverage(tmp_path):
    runner = _runner(tmp_path)
    loader_cfg = copy.deepcopy(runner.cfg.val_dataloader)
    loader_cfg.drop_last = True
    loader_cfg.batch_size = 5
    loader = Runner.build_dataloader(loader_cfg, seed=0)
    with pytest.raises(RuntimeError, match='not visited'):
        extract_features(runner.model, loader, progress=False)
