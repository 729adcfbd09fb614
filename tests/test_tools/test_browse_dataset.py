"""tools/analysis_tools/browse_dataset.py: the config's own scope (our
DigitsDataset, which MMPretrain's browser cannot build), exact pixels in
'original' mode, every view of a multi-view pipeline, wrappers looked
through, clear errors."""
import importlib.util
import os
import os.path as osp

import numpy as np
import pytest
from mmengine.config import Config
from PIL import Image

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
DIGITS_CFG = osp.join(ROOT, 'configs', 'mocov2',
                      'mocov2_resnet18-cifar_1xb64-coslr-20e_digits.py')
CCROP_CFG = osp.join(ROOT, 'configs', 'ccrop',
                     'ccrop-simclr_resnet18-cifar_1xb64-coslr-20e_digits.py')


def _tool():
    spec = importlib.util.spec_from_file_location(
        '_browse', osp.join(ROOT, 'tools', 'analysis_tools',
                            'browse_dataset.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


browse = _tool()


@pytest.fixture
def mmpretrain_scope():
    """Start from MMPretrain's scope, where DigitsDataset does not exist."""
    from mmengine.registry import DefaultScope
    DefaultScope.get_instance(f'browse-{id(object())}',
                              scope_name='mmpretrain')
    from mmpretrain.registry import DATASETS
    assert DATASETS.get('DigitsDataset') is None
    yield


def test_original_mode_writes_the_exact_images(tmp_path, mmpretrain_scope):
    out = str(tmp_path / 'vis')
    res = browse.main([DIGITS_CFG, '--phase', 'test', '--mode', 'original',
                       '-o', out, '--indices', '0', '7'])
    assert sorted(os.listdir(out)) == ['00000_sample.png',
                                       '00007_sample.png']
    from mmssl_ext.datasets import DigitsDataset
    ds = DigitsDataset(split='test', pipeline=[])
    for r in res:
        png = np.asarray(Image.open(r['out']).convert('RGB'))
        # in-memory RGB digits, preprocessor to_rgb=False: no flip
        assert np.array_equal(png, ds.get_data_info(r['index'])['img'])
    # rescaled: nearest-neighbour enlargement of the same pixels
    res = browse.main([DIGITS_CFG, '--phase', 'test', '--mode', 'original',
                       '-o', out, '--indices', '3', '-r', '2'])
    png = np.asarray(Image.open(res[0]['out']).convert('RGB'))
    ref = ds.get_data_info(3)['img']
    assert png.shape == (64, 64, 3)
    assert np.array_equal(png[::2, ::2], ref)


def test_transformed_multiview_and_pipeline_modes(tmp_path):
    out = str(tmp_path / 'vis')
    res = browse.main([DIGITS_CFG, '-o', out, '-n', '2', '--mode',
                       'pipeline'])
    assert len(res) == 2 and len(os.listdir(out)) == 2
    for r in res:
        names = [n for n, _ in r['records']]
        assert names == ['original', 'MultiView']
        views = r['records'][-1][1]
        assert isinstance(views, list) and len(views) == 2
        assert all(v.shape == (32, 32, 3) for v in views)
        assert Image.open(r['out']).size[0] > 100
    # the wrapper of ContrastiveCrop is looked through to the pipeline
    res = browse.main([CCROP_CFG, '-o', out, '--indices', '5', '--mode',
                       'concat'])
    assert osp.isfile(res[0]['out'])


def test_channel_order_from_the_data_preprocessor():
    cfg = Config(dict(model=dict(data_preprocessor=dict(to_rgb=True))))
    assert browse.bgr_pipeline(cfg)
    cfg = Config(dict(data_preprocessor=dict(bgr_to_rgb=False)))
    assert not browse.bgr_pipeline(cfg)
    assert not browse.bgr_pipeline(Config.fromfile(DIGITS_CFG))
    img = np.zeros((2, 2, 3), np.uint8)
    img[..., 0] = 255  # blue in BGR
    shown = browse.to_display(img, bgr=True)
    assert (shown[..., 2] == 255).all() and (shown[..., 0] == 0).all()


def test_errors_name_the_problem(tmp_path):
    cfg = Config.fromfile(DIGITS_CFG)
    with pytest.raises(ValueError, match='--output-dir'):
        browse.browse_dataset(cfg)
    cfg.train_dataloader = None
    with pytest.raises(ValueError, match='train_dataloader'):
        browse.browse_dataset(cfg, output_dir=str(tmp_path))
    with pytest.raises(IndexError, match='length 1000'):
        browse.browse_dataset(Config.fromfile(DIGITS_CFG), phase='test',
                              output_dir=str(tmp_path), indices=[1000])
