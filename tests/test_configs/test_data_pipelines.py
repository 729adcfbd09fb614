"""Data pipelines of every pre-training config: channel order of the
grayscale weights and of the normalisation, registry scopes, the shared data
bases (configs/_base_/datasets/, MMPretrain's ImageNet bases) and the kNN
monitors."""
import copy
import glob
import os.path as osp

import mmpretrain
import numpy as np
import pytest
from mmengine.config import Config
from PIL import Image

from mmssl_ext.registry import DATA_SAMPLERS, DATASETS, LOOPS, TRANSFORMS

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
CONFIGS = osp.join(ROOT, 'configs')
PRETRAIN = sorted(
    p for p in glob.glob(osp.join(CONFIGS, '*', '*.py'))
    if osp.basename(osp.dirname(p)) not in ('_base_', 'benchmarks')) + [
        osp.join(CONFIGS, 'interclr_r50.py')
    ]
MMPRETRAIN_CONFIGS = osp.join(osp.dirname(mmpretrain.__file__), '.mim',
                              'configs')

#: ITU-R BT.601 luma weights, by colour
LUMA = {'r': 0.2989, 'g': 0.587, 'b': 0.114}
FILE_LOADERS = {'LoadImageFromFile', 'SafeLoadImageFromFile'}
#: data set types that hold decoded RGB arrays (no file is read)
IN_MEMORY_RGB = {'CIFAR10', 'CIFAR100', 'DigitsDataset',
                 'SyntheticImageDataset'}

#: the embedded-digits recipes give RandomGrayscale BGR weights on RGB
#: arrays; they are being reworked separately. strict: once fixed, the
#: xfail turns into a failure and this list must shrink.
def _id(path):
    return osp.relpath(path, CONFIGS)


def _bare(type_name):
    return type_name.rsplit('.', 1)[-1]


def _inner_dataset(ds):
    """Unwrap data set wrappers (ContrastiveCropDataset) to the one that
    holds the pipeline."""
    while 'pipeline' not in ds and 'dataset' in ds:
        ds = ds['dataset']
    return ds


def _walk(pipeline, order, grays, jitters=None):
    """Follow the channel order through a pipeline; record every
    RandomGrayscale with the order of the array it receives (and every
    colour jitter, in ``jitters``). Returns the order at the end."""
    jitters = [] if jitters is None else jitters
    for t in pipeline:
        name = _bare(t['type'])
        if name in ('ColorJitter', 'ColorJitterRGB'):
            jitters.append((order, name))
        if name in FILE_LOADERS:
            order = 'bgr'  # mmcv decodes files to BGR
        elif name == 'NumpyToPIL' and t.get('to_rgb', False):
            order = order[::-1]
        elif name == 'PILToNumpy' and t.get('to_bgr', False):
            order = order[::-1]
        elif name == 'RandomGrayscale':
            grays.append((order, tuple(t['channel_weights'])))
        elif name == 'MultiView':
            ends = {_walk(view, order, grays, jitters)
                    for view in t['transforms']}
            assert len(ends) == 1, f'views end in different orders {ends}'
            order = ends.pop()
        elif name == 'RandomApply':
            end = _walk(t['transforms'], order, grays, jitters)
            assert end == order, 'RandomApply must not change the order'
    return order


def _start_order(ds):
    first = _bare(ds['pipeline'][0]['type']) if ds['pipeline'] else None
    if first in FILE_LOADERS:
        return 'bgr'
    assert _bare(ds['type']) in IN_MEMORY_RGB, (
        f"{ds['type']} reads no file and is not a known in-memory RGB data "
        'set: add it to IN_MEMORY_RGB with its channel order')
    return 'rgb'


def _trace(cfg):
    ds = _inner_dataset(cfg.train_dataloader.dataset.to_dict())
    grays = []
    end = _walk(ds['pipeline'], _start_order(ds), grays)
    return end, grays


@pytest.mark.parametrize('path', PRETRAIN, ids=_id)
def test_colour_jitter_follows_the_loaded_channel_order(path):
    """MMPretrain's ColorJitter computes its gray with BGR weights: it must
    see BGR arrays; RGB arrays (CIFAR in memory) take ColorJitterRGB. The
    digits are grayscale (R = G = B): either is exact there."""
    cfg = Config.fromfile(path)
    ds = _inner_dataset(cfg.train_dataloader.dataset.to_dict())
    jitters = []
    _walk(ds['pipeline'], _start_order(ds), [], jitters)
    if '_digits' in osp.basename(path):
        return
    for order, name in jitters:
        assert (order, name) in (('bgr', 'ColorJitter'),
                                 ('rgb', 'ColorJitterRGB')), (
            f'{name} on a {order.upper()} array')


def test_color_jitter_rgb_desaturates_with_rgb_weights():
    """Saturation 0 turns pure red into its luma: 0.299 * 255 = 76 (by
    hand); MMPretrain's ColorJitter on the same RGB array gives the blue
    weight's 29."""
    import numpy as np
    import mmssl_ext  # noqa: F401
    from mmssl_ext.registry import TRANSFORMS
    red = np.zeros((4, 4, 3), dtype=np.uint8)
    red[..., 0] = 255  # RGB
    for name, expected in (('ColorJitterRGB', 76), ('ColorJitter', 29)):
        t = TRANSFORMS.build(dict(type=name, saturation=(0., 0.)))
        out = t(dict(img=red.copy()))['img']
        assert out.shape == red.shape
        assert np.abs(out.astype(int) - expected).max() <= 1, (name, out[0, 0])


def _is_digits(path):
    return '_digits' in osp.basename(path)


@pytest.mark.parametrize('path', PRETRAIN, ids=_id)
def test_grayscale_weights_follow_the_loaded_channel_order(path):
    """CIFAR arrays are RGB, image files decode to BGR: the weights must be
    in the order of the array RandomGrayscale receives. The digits are
    grayscale already: their recipes have no RandomGrayscale (a no-op)."""
    cfg = Config.fromfile(path)
    _, grays = _trace(cfg)
    if _is_digits(path):
        assert not grays, 'RandomGrayscale is a no-op on the digits'
        return
    assert grays, 'no RandomGrayscale in the training pipeline'
    for order, weights in grays:
        expected = tuple(LUMA[c] for c in order)
        assert weights == expected, (
            f'{order.upper()} array, weights {weights}, expected {expected}')


@pytest.mark.parametrize('path', PRETRAIN, ids=_id)
def test_normalisation_sees_rgb(path):
    """Every config normalises with RGB statistics, so the preprocessor
    swaps channels exactly when the pipeline delivers BGR arrays."""
    cfg = Config.fromfile(path)
    end, _ = _trace(cfg)
    pre = cfg.model.get('data_preprocessor') or cfg.get('data_preprocessor')
    assert pre is not None, 'no data preprocessor'
    assert bool(pre.get('to_rgb', False)) == (end == 'bgr'), (
        f'pipeline ends in {end.upper()}, to_rgb={pre.get("to_rgb")}')


def _gray_transform(cfg):
    ds = _inner_dataset(cfg.train_dataloader.dataset.to_dict())
    found = []

    def walk(pipeline):
        for t in pipeline:
            if _bare(t['type']) == 'RandomGrayscale':
                found.append(t)
            for sub in t.get('transforms', []) or []:
                walk(sub if isinstance(sub, list) else [sub])

    walk(ds['pipeline'])
    t = dict(found[0], prob=1.0)
    t.pop('_scope_', None)
    return TRANSFORMS.build(t)


@pytest.mark.parametrize('name', [
    'ccrop/ccrop-simclr_resnet18-cifar_1xb512-coslr-500e_cifar10.py',
    'ccrop/ccrop-simclr_resnet18-cifar_1xb512-coslr-500e_stl10.py',
    'interclr/interclr-moco_resnet18-cifar_1xb256-coslr-200e_cifar10.py',
    'interclr/interclr-moco_resnet50_8xb32-coslr-200e_in1k.py',
])
def test_pure_red_greys_to_its_luma(name, tmp_path):
    """End to end: a pure red image, delivered as the data set delivers it
    (CIFAR: RGB array; files: mmcv's loader), greys to 0.299 x 255 = 76, not
    to the blue weight's 29."""
    cfg = Config.fromfile(osp.join(CONFIGS, name))
    ds = _inner_dataset(cfg.train_dataloader.dataset.to_dict())
    red = np.zeros((8, 8, 3), np.uint8)
    red[..., 0] = 255  # RGB
    if _bare(ds['pipeline'][0]['type']) in FILE_LOADERS:
        Image.fromarray(red).save(tmp_path / 'red.png')
        load = TRANSFORMS.build(dict(type='LoadImageFromFile'))
        results = load(dict(img_path=str(tmp_path / 'red.png')))
        assert results['img'][0, 0].tolist() == [0, 0, 255]  # BGR
    else:
        results = dict(img=red.copy())
    out = _gray_transform(cfg)(results)['img']
    assert out.shape == (8, 8, 3)
    assert np.all(out == int(255 * 0.2989 / (0.2989 + 0.587 + 0.114)))


@pytest.mark.parametrize('path', PRETRAIN, ids=_id)
def test_training_set_builds_in_its_scope(path):
    """Every transform, sampler and data set type resolves in the registry
    scope it is built in (``mmpretrain::`` bases tag their dicts with
    ``_scope_='mmpretrain'``; our types must not end up under it)."""
    cfg = Config.fromfile(path)
    ds = copy.deepcopy(cfg.train_dataloader.dataset.to_dict())
    ds = _inner_dataset(ds)
    ds['lazy_init'] = True  # no files needed
    dataset = DATASETS.build(ds)
    assert len(dataset.pipeline.transforms) == len(ds['pipeline'])
    sampler = DATA_SAMPLERS.build(
        copy.deepcopy(cfg.train_dataloader.sampler.to_dict()),
        default_args=dict(dataset=list(range(16)), seed=0))
    assert len(list(iter(sampler))) == 16


def test_interclr_in1k_samples_with_replacement():
    """The reference InterCLR samples ImageNet with replacement."""
    for name in ('interclr_r50.py',
                 'interclr/interclr-moco_resnet50_8xb32-coslr-200e_in1k.py'):
        cfg = Config.fromfile(osp.join(CONFIGS, name))
        sampler = DATA_SAMPLERS.build(
            cfg.train_dataloader.sampler.to_dict(),
            default_args=dict(dataset=list(range(1000)), seed=0))
        assert type(sampler).__name__ == 'ClusterSampler' and sampler.replace
        idx = list(iter(sampler))
        # 1000 draws with replacement from 1000: ~368 never drawn
        assert len(idx) == 1000 and 250 < 1000 - len(set(idx)) < 500


def _strip_scope(obj):
    if isinstance(obj, dict):
        return {k: _strip_scope(v) for k, v in obj.items() if k != '_scope_'}
    if isinstance(obj, (list, tuple)):
        return [_strip_scope(v) for v in obj]
    return obj


def _mmpretrain_base(rel):
    return Config.fromfile(osp.join(MMPRETRAIN_CONFIGS, rel))


@pytest.mark.parametrize('name,num_views,crop', [
    ('interclr/interclr-moco_resnet50_8xb32-coslr-200e_in1k.py', 2, None),
    ('cld/cld-mocov2_resnet50_8xb64-coslr-200e_in1k.py', 3, None),
    ('invp/invp_resnet50_8xb16-coslr-800e_in1k.py', 1, None),
    ('ccrop/ccrop-mocov2_resnet50_8xb32-coslr-100e_in1k.py', 2,
     'ContrastiveCrop'),
])
def test_imagenet_recipes_use_mmpretrains_mocov2_data(name, num_views, crop):
    base = _mmpretrain_base('_base_/datasets/imagenet_bs32_mocov2.py')
    cfg = Config.fromfile(osp.join(CONFIGS, name))
    pre = cfg.model.get('data_preprocessor') or cfg.data_preprocessor
    assert _strip_scope(pre.to_dict()) == _strip_scope(
        base.data_preprocessor.to_dict())
    ds = _inner_dataset(cfg.train_dataloader.dataset.to_dict())
    assert (ds['type'], ds['data_root'], ds['split']) == (
        'ImageNet', 'data/imagenet/', 'train')
    views = [t for t in ds['pipeline'] if t['type'] == 'MultiView'][0]
    assert views['num_views'] == num_views
    view = _strip_scope(views['transforms'][0])
    expected = _strip_scope(base.view_pipeline)
    if crop:  # the crop is the method; every other transform is MMPretrain's
        assert view[0]['type'] == crop
        view, expected = view[1:], expected[1:]
    assert view == expected


def test_imagenet_schedules_are_mmpretrains():
    base = _mmpretrain_base('_base_/schedules/imagenet_sgd_coslr_200e.py')
    cfg = Config.fromfile(
        osp.join(CONFIGS, 'interclr',
                 'interclr-moco_resnet50_8xb32-coslr-200e_in1k.py'))
    for key in ('optim_wrapper', 'param_scheduler', 'train_cfg'):
        assert _strip_scope(cfg[key]) == _strip_scope(base[key]), key


DATA_BASES = {
    'cifar10': 'cifar10.py',
    'cifar100': 'cifar100.py',
    'stl10': 'stl10.py',
    'tinyimagenet': 'tinyimagenet.py',
}
CCROP_SMALL = sorted(glob.glob(osp.join(CONFIGS, 'ccrop', '*-500e_*.py')))


@pytest.mark.parametrize('path', CCROP_SMALL, ids=_id)
def test_ccrop_small_recipes_are_their_data_base_plus_the_crop(path):
    """A ContrastiveCrop recipe = its data set base with ContrastiveCrop
    (same arguments, alpha 0.1) in place of RandomResizedCrop, and the data
    set wrapped; nothing else of the data differs."""
    data = osp.splitext(path)[0].rsplit('_', 1)[-1]
    base = Config.fromfile(
        osp.join(CONFIGS, '_base_', 'datasets', DATA_BASES[data]))
    cfg = Config.fromfile(path)
    assert cfg.data_preprocessor == base.data_preprocessor
    assert cfg.train_dataloader.dataset.type == 'ContrastiveCropDataset'
    inner = cfg.train_dataloader.dataset.dataset.to_dict()
    base_ds = base.train_dataloader.dataset.to_dict()
    assert {k: v for k, v in inner.items() if k != 'pipeline'} == {
        k: v for k, v in base_ds.items() if k != 'pipeline'}
    for k in ('batch_size', 'num_workers', 'drop_last', 'sampler'):
        assert cfg.train_dataloader[k] == base.train_dataloader[k], k
    views = [t for t in inner['pipeline'] if t['type'] == 'MultiView'][0]
    view, base_view = views['transforms'][0], base.view_pipeline
    assert view[0] == dict(base_view[0], type='ContrastiveCrop', alpha=0.1)
    assert view[1:] == [dict(t) for t in base_view[1:]]
    hook = [h for h in cfg.custom_hooks
            if h['type'] == 'ContrastiveCropHook'][0]
    assert hook['pipeline'] == base.test_pipeline


def test_knn_test_loops_match_the_monitors():
    """A config whose test loop is the kNN monitor runs it with the same
    data and settings as its validation loop (a base's test loop does not
    follow a child's val overrides by itself)."""
    checked = []
    for path in PRETRAIN:
        cfg = Config.fromfile(path)
        val, test = cfg.get('val_cfg'), cfg.get('test_cfg')
        if not val or val.get('type') != 'KNNValLoop' or not test:
            continue
        name = _id(path)
        assert test.type == 'KNNTestLoop', name
        if _is_digits(path):
            # digits: validation = the val split against train_noval, test
            # = the test split against all of train, same k and sigma
            assert (cfg.val_dataloader.dataset.split,
                    val.bank_dataloader.dataset.split) == ('val',
                                                           'train_noval')
            assert (cfg.test_dataloader.dataset.split,
                    test.bank_dataloader.dataset.split) == ('test', 'train')
            assert (test.k, test.sigma) == (val.k, val.sigma), name
            continue
        assert {k: v for k, v in test.items() if k != 'type'} == {
            k: v for k, v in val.items() if k != 'type'}, name
        assert cfg.test_dataloader == cfg.val_dataloader, name
        checked.append(name)
    # among them the CIFAR recipes that inherit cifar10_knn.py and override
    # the monitor's batch size or sigma
    assert {
        'cld/cld-npid_resnet18-cifar_1xb256-coslr-200e_cifar10.py',
        'cld/cld-npid_resnet18-cifar_1xb256-coslr-200e_cifar100.py',
        'cld/cld-moco_resnet18-cifar_1xb256-coslr-200e_cifar10.py',
        'cld/cld-moco_resnet18-cifar_1xb128-coslr-200e_cifar100.py',
        'bsim/bsim-mocov2_resnet18-cifar_1xb512-coslr-1000e_cifar10.py',
        'bsim/bsim-simclr_resnet18-cifar_1xb512-coslr-1000e_cifar10.py',
    } <= set(checked)


IN1K = [
    p for p in PRETRAIN
    if p.endswith('_in1k.py') or p.endswith('interclr_r50.py')
]
#: ImageNet recipes with their own monitor (InvP's memory-bank loop)
IN1K_OWN_MONITOR = {'invp/invp_resnet50_8xb16-coslr-800e_in1k.py',
                    'invp/invp_resnet50_8xb16-coslr-200e_in1k.py'}


@pytest.mark.parametrize(
    'path', [p for p in IN1K if _id(p) not in IN1K_OWN_MONITOR], ids=_id)
def test_imagenet_knn_monitor_can_be_added(path, tmp_path):
    """configs/_base_/datasets/imagenet_knn.py adds a weighted-kNN
    validation loop to any ImageNet pre-training config without one."""
    assert not Config.fromfile(path).get('val_cfg')
    knn = osp.join(CONFIGS, '_base_', 'datasets', 'imagenet_knn.py')
    child = tmp_path / 'with_knn.py'
    child.write_text(f'_base_ = [{path!r}, {knn!r}]\n'
                     'train_cfg = dict(val_interval=10)\n')
    cfg = Config.fromfile(str(child))
    assert cfg.val_cfg.type == 'KNNValLoop' and cfg.test_cfg.type == \
        'KNNTestLoop'
    assert LOOPS.get(cfg.val_cfg.type) is not None
    assert cfg.train_cfg.val_interval == 10
    assert cfg.train_cfg.max_epochs == Config.fromfile(path).train_cfg[
        'max_epochs']
    for ds in (cfg.val_dataloader.dataset,
               cfg.val_cfg.bank_dataloader.dataset):
        d = DATASETS.build(dict(ds.to_dict(), lazy_init=True))
        assert type(d).__name__ == 'ImageNet'
    assert cfg.val_dataloader.dataset.split == 'val'
    assert cfg.val_cfg.bank_dataloader.dataset.split == 'train'
