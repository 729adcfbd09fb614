"""docs/transfer.md lists the load-time warnings that are expected when a
backbone file initialises the detection benchmark configs: check that
exactly those are logged (a converted ResNet-50 loaded into the modules the
configs build)."""
import importlib.util
import logging
import os.path as osp
import re

import pytest
import torch
import torchvision

pytest.importorskip('mmdet')

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
C4_CFG = osp.join(ROOT, 'configs', 'benchmarks', 'mmdetection', 'voc0712',
                  'faster-rcnn_r50-c4_ms-24k_voc0712.py')
FPN_CFG = osp.join(ROOT, 'configs', 'benchmarks', 'mmdetection', 'coco',
                   'mask-rcnn_r50_fpn_ms-1x_coco.py')


def _ebw():
    spec = importlib.util.spec_from_file_location(
        '_ebw_doc', osp.join(ROOT, 'tools', 'model_converters',
                             'extract_backbone_weights.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class _Capture(logging.Handler):

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def _load_warnings(ebw, config, backbone_file):
    """{module name: (unexpected keys, missing keys)} logged by mmengine
    while each part of ``config`` loads ``backbone_file``."""
    from mmengine.logging import MMLogger
    from mmengine.registry import MODELS, DefaultScope
    parts, scope = ebw.target_parts(config)
    logger = MMLogger.get_current_instance()
    out = {}
    for name, part in parts:
        part = ebw._bn_instead_of_syncbn(part)
        part['init_cfg'] = dict(part['init_cfg'], checkpoint=backbone_file)
        with DefaultScope.overwrite_default_scope(scope):
            module = MODELS.build(part)
        cap = _Capture()
        logger.addHandler(cap)
        try:
            module.init_weights()
        finally:
            logger.removeHandler(cap)
        text = '\n'.join(m for m in cap.messages
                         if 'do not match exactly' in m)

        def keys(label):
            m = re.search(label + r': (.*)', text)
            return set(m.group(1).split(', ')) if m else set()

        out[name] = (keys('unexpected key in source state_dict'),
                     keys('missing keys in source state_dict'))
    return out


def test_documented_load_lines_are_exactly_the_logged_ones(tmp_path):
    ebw = _ebw()
    src = str(tmp_path / 'r50.pth')
    torch.save(torchvision.models.resnet50(weights=None).state_dict(), src)
    bb = str(tmp_path / 'backbone.pth')
    ebw.extract_backbone(src, bb, target_config=C4_CFG, log=lambda *a: None)
    keys = set(torch.load(bb)['state_dict'])
    layer4 = {k for k in keys if k.startswith('layer4.')}

    c4 = _load_warnings(ebw, C4_CFG, bb)
    assert c4['model.backbone'] == (layer4, set())
    assert c4['model.roi_head.shared_head'] == (
        keys - layer4,
        {'norm.weight', 'norm.bias', 'norm.running_mean', 'norm.running_var'})
    fpn = _load_warnings(ebw, FPN_CFG, bb)
    assert fpn == {'model.backbone': (set(), set())}
    # the doc quotes these lines
    with open(osp.join(ROOT, 'docs', 'transfer.md')) as f:
        doc = f.read()
    assert ('missing keys in source state_dict: norm.weight, norm.bias, '
            'norm.running_mean, norm.running_var') in doc
    assert 'unexpected key in source state_dict: layer4.0.conv1.weight' in doc
