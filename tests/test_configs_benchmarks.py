"""Every benchmark config parses; classifiers build in our scope and take a
backbone-only checkpoint through init_cfg; detectors build in MMDetection's
scope; the protocol numbers are the published ones."""
import copy
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..'))
BENCH = osp.join(ROOT, 'configs', 'benchmarks')
CLS = sorted(glob.glob(osp.join(BENCH, 'classification', '**', '*.py'),
                       recursive=True))
DET = sorted(glob.glob(osp.join(BENCH, 'mmdetection', '**', '*.py'),
                       recursive=True))
SEG = sorted(glob.glob(osp.join(BENCH, 'mmsegmentation', '**', '*.py'),
                       recursive=True))


def _rel(p):
    return osp.relpath(p, BENCH)


def test_benchmark_configs_exist():
    names = {osp.basename(p) for p in CLS + DET}
    for required in ('resnet50_8xb32-linear-steplr-100e_in1k.py',
                     'resnet50_4xb64-steplr-20e_in1k-1pct.py',
                     'resnet50_4xb64-steplr-20e_in1k-10pct.py',
                     'resnet18-cifar_1xb64-linear-steplr-10e_digits.py',
                     'faster-rcnn_r50-c4_ms-24k_voc0712.py',
                     'mask-rcnn_r50_fpn_ms-1x_coco.py'):
        assert required in names


@pytest.mark.parametrize('path', CLS, ids=_rel)
def test_classification_config_builds(path):
    from mmengine.registry import DefaultScope

    from mmssl_ext.registry import MODELS
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmssl_ext'
    init = cfg.model.backbone.init_cfg
    assert init.type == 'Pretrained' and init.get('prefix') is None
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.setdefault('data_preprocessor', cfg.get('data_preprocessor'))
    with DefaultScope.overwrite_default_scope('mmssl_ext'):
        model = MODELS.build(model_cfg)
    assert type(model).__name__ == 'ImageClassifier'
    assert model.head.num_classes == cfg.model.head.num_classes
    linear = 'linear' in osp.basename(path)
    if linear:
        # frozen backbone, BN statistics frozen too
        assert cfg.model.backbone.frozen_stages == 4
        model.train()
        assert not any(p.requires_grad for p in model.backbone.parameters())
        assert not model.backbone.layer4.training
        assert cfg.optim_wrapper.optimizer.weight_decay == 0
    else:
        assert cfg.model.backbone.frozen_stages == -1


def test_linear_in1k_is_the_moco_protocol():
    cfg = Config.fromfile(osp.join(
        BENCH, 'classification', 'imagenet',
        'resnet50_8xb32-linear-steplr-100e_in1k.py'))
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr, opt.momentum, opt.weight_decay) == ('SGD', 30.,
                                                                  0.9, 0.)
    assert cfg.train_cfg.max_epochs == 100
    (sched, ) = cfg.param_scheduler
    assert sched.type == 'MultiStepLR' and list(sched.milestones) == [60, 80]
    assert cfg.train_dataloader.batch_size * 8 == 256
    assert cfg.model.backbone.depth == 50


def test_semi_supervised_protocols():
    one = Config.fromfile(osp.join(BENCH, 'classification', 'imagenet',
                                   'resnet50_4xb64-steplr-20e_in1k-1pct.py'))
    ten = Config.fromfile(osp.join(BENCH, 'classification', 'imagenet',
                                   'resnet50_4xb64-steplr-20e_in1k-10pct.py'))
    assert one.train_dataloader.dataset.ann_file == 'meta/train_1percent.txt'
    assert ten.train_dataloader.dataset.ann_file == 'meta/train_10percent.txt'
    assert one.optim_wrapper.optimizer.weight_decay == 5e-4
    assert ten.optim_wrapper.optimizer.weight_decay == 1e-4
    for c in (one, ten):
        assert c.train_cfg.max_epochs == 20
        assert c.model.backbone.norm_cfg.type == 'SyncBN'
        assert list(c.param_scheduler[0].milestones) == [12, 16]


def test_digits_linear_probe_loads_converted_backbone(tmp_path):
    """init_cfg=Pretrained with a backbone-only file (what
    extract_backbone_weights.py writes) initialises the backbone exactly."""
    from mmengine.registry import DefaultScope

    from mmssl_ext.registry import MODELS
    cfg = Config.fromfile(osp.join(
        BENCH, 'classification', 'digits',
        'resnet18-cifar_1xb64-linear-steplr-10e_digits.py'))
    # the probe's backbone is the digits pre-training backbone
    base = Config.fromfile(osp.join(ROOT, 'configs', '_base_', 'models',
                                    'resnet18_cifar_digits.py'))
    for key in ('type', 'depth', 'stem_channels', 'base_channels'):
        assert cfg.model.backbone[key] == base.backbone[key], key
    with DefaultScope.overwrite_default_scope('mmssl_ext'):
        torch.manual_seed(1)
        src = MODELS.build(dict(base.backbone))
        path = str(tmp_path / 'backbone.pth')
        torch.save({'state_dict': src.state_dict(),
                    'meta': {'extracted_backbone': True}}, path)
        model_cfg = copy.deepcopy(cfg.model)
        model_cfg.backbone.init_cfg.checkpoint = path
        torch.manual_seed(2)
        model = MODELS.build(model_cfg)
    model.init_weights()
    for k, v in src.state_dict().items():
        assert torch.equal(model.backbone.state_dict()[k], v), k


@pytest.fixture(scope='module')
def mmdet_scope():
    pytest.importorskip('mmcv.ops')
    import mmdet.models  # noqa: F401
    import mmpretrain.models.utils.res_layer_extra_norm  # noqa: F401
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=False)


@pytest.mark.parametrize('path', DET, ids=_rel)
def test_detection_config_builds(path, mmdet_scope):
    from mmdet.registry import MODELS as DET_MODELS
    from mmengine.registry import DefaultScope
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmdet'
    bb = cfg.model.backbone
    assert bb.norm_cfg.type == 'SyncBN' and bb.norm_eval is False
    assert bb.frozen_stages == -1 and bb.style == 'pytorch'
    assert bb.init_cfg.type == 'Pretrained'
    # pytorch-style ImageNet normalisation, RGB
    assert list(cfg.model.data_preprocessor.mean) == [123.675, 116.28,
                                                      103.53]
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = DET_MODELS.build(cfg.model)
    assert any(isinstance(m, torch.nn.SyncBatchNorm) for m in model.modules())
    if 'c4' in osp.basename(path):
        sh = cfg.model.roi_head.shared_head
        assert sh.type == 'ResLayerExtraNorm' and sh.norm_eval is False
        assert sh.init_cfg.type == 'Pretrained'
        assert type(model).__name__ == 'FasterRCNN'
        assert cfg.train_cfg.max_iters == 24000
        assert cfg.model.roi_head.bbox_head.num_classes == 20
        ms = [s for s in cfg.param_scheduler if s.type == 'MultiStepLR'][0]
        assert list(ms.milestones) == [18000, 22000]
    else:
        assert type(model).__name__ == 'MaskRCNN'
        assert cfg.train_cfg.max_epochs == 12
        assert cfg.model.roi_head.bbox_head.type == 'Shared4Conv1FCBBoxHead'


@pytest.mark.parametrize('path', SEG, ids=_rel)
def test_segmentation_config_builds(path):
    """Only where MMSegmentation is installed (it is not part of the
    default stack; see the config's header)."""
    pytest.importorskip('mmcv.ops')
    pytest.importorskip('mmseg')
    import mmseg.models  # noqa: F401
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS as SEG_MODELS
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmseg'
    bb = cfg.model.backbone
    assert bb.type == 'ResNet' and bb.init_cfg.type == 'Pretrained'
    assert bb.norm_cfg.type == 'SyncBN' and bb.norm_eval is False
    assert cfg.train_cfg.max_iters == 20000
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = SEG_MODELS.build(cfg.model)
    assert type(model).__name__ == 'EncoderDecoder'
    # the plain ResNet-50 of a self-supervised checkpoint fits its backbone
    import torchvision
    sd = torchvision.models.resnet50(weights=None).state_dict()
    own = model.backbone.state_dict()
    assert {k for k in sd if not k.startswith('fc.')} == set(own)
