"""The whole transfer chain on CPU: tiny MoCo v2 pre-training (mmengine
Runner, synthetic images, 2 iterations) -> backbone extraction -> weighted kNN
evaluation -> one MMDetection training iteration of the Faster R-CNN R50-C4
VOC benchmark config and of the Mask R-CNN R50-FPN COCO config (shrunk to
ResNet-18, on a generated COCO-format data set with boxes and masks) whose
backbone (and C4 shared head) start from the converted file."""
import copy
import importlib.util
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook

pytest.importorskip('mmcv.ops')

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
TINY_CFG = osp.join(ROOT, 'tests', 'data', 'configs',
                    'mocov2_tiny_synthetic.py')
C4_CFG = osp.join(ROOT, 'configs', 'benchmarks', 'mmdetection', 'voc0712',
                  'faster-rcnn_r50-c4_ms-24k_voc0712.py')
FPN_CFG = osp.join(ROOT, 'configs', 'benchmarks', 'mmdetection', 'coco',
                   'mask-rcnn_r50_fpn_ms-1x_coco.py')


def _load(rel, name):
    spec = importlib.util.spec_from_file_location(name, osp.join(ROOT, rel))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _pretrain_cfg(work_dir):
    """The tiny MoCo v2 test recipe with a full-width ResNet-18 (the C4
    shared head of MMDetection hard-codes 64 base channels)."""
    cfg = Config.fromfile(TINY_CFG)
    cfg.work_dir = work_dir
    cfg.model.backbone = dict(type='ResNet', depth=18,
                              norm_cfg=dict(type='BN'))
    cfg.model.neck.in_channels = 512
    data = dict(type='SyntheticImageDataset', num_samples=16, num_classes=4,
                img_size=32, seed=0)
    view = [dict(type='RandomResizedCrop', scale=32,
                 crop_ratio_range=(0.5, 1.0), backend='pillow')]
    cfg.train_dataloader.dataset = dict(data, pipeline=[
        dict(type='MultiView', num_views=2, transforms=[view]),
        dict(type='PackInputs')])
    pack = [dict(type='PackInputs')]
    # bank and test split are the same images: with k=1 every query finds
    # itself, so top-1 must be exactly 100 %
    cfg.test_cfg.bank_dataloader.dataset = dict(data, pipeline=pack)
    cfg.test_dataloader.dataset = dict(data, pipeline=pack)
    cfg.val_cfg.bank_dataloader.dataset = dict(data, pipeline=pack)
    cfg.val_dataloader.dataset = dict(data, pipeline=pack)
    cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=1,
                         val_begin=100, val_interval=100)  # 2 iterations
    return cfg


def make_coco(root, num_images=4, size=64, seed=0):
    """A few images with 1-2 filled rectangles each; COCO json with boxes
    and polygon masks of 2 categories."""
    from PIL import Image
    rng = np.random.RandomState(seed)
    (root / 'imgs').mkdir(parents=True)
    images, anns = [], []
    for i in range(num_images):
        img = rng.randint(0, 60, size=(size, size, 3)).astype(np.uint8)
        for _ in range(1 + i % 2):
            w, h = (int(v) for v in rng.randint(16, 32, size=2))
            x, y = int(rng.randint(0, size - w)), int(rng.randint(0, size - h))
            cat = int(rng.randint(1, 3))
            img[y:y + h, x:x + w] = (200, 40, 40) if cat == 1 else (40, 200,
                                                                     40)
            anns.append(dict(
                id=len(anns) + 1, image_id=i + 1, category_id=cat,
                bbox=[float(x), float(y), float(w), float(h)],
                area=float(w * h), iscrowd=0,
                segmentation=[[x, y, x + w, y, x + w, y + h, x, y + h]]))
        name = f'{i:03d}.png'
        Image.fromarray(img).save(root / 'imgs' / name)
        images.append(dict(id=i + 1, file_name=name, width=size,
                           height=size))
    ann = dict(images=images, annotations=anns,
               categories=[dict(id=1, name='red'), dict(id=2, name='green')])
    (root / 'ann.json').write_text(json.dumps(ann))
    return str(root)


def _det_data(root, with_mask):
    return dict(
        batch_size=2, num_workers=0, persistent_workers=False,
        sampler=dict(type='DefaultSampler', shuffle=True),
        collate_fn=dict(type='pseudo_collate'),
        dataset=dict(
            type='CocoDataset', data_root=root, ann_file='ann.json',
            data_prefix=dict(img='imgs/'),
            metainfo=dict(classes=('red', 'green')),
            filter_cfg=dict(filter_empty_gt=True, min_size=4),
            pipeline=[
                dict(type='LoadImageFromFile'),
                dict(type='LoadAnnotations', with_bbox=True,
                     with_mask=with_mask),
                dict(type='Resize', scale=(64, 64), keep_ratio=True),
                dict(type='RandomFlip', prob=0.5),
                dict(type='PackDetInputs'),
            ]))


def _shrink_for_test(cfg, work_dir, data_root, backbone_file, with_mask):
    cfg.work_dir = work_dir
    cfg.model.backbone.depth = 18
    cfg.model.backbone.init_cfg.checkpoint = backbone_file
    cfg.train_dataloader = _det_data(data_root, with_mask)
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=1,
                         val_interval=1000)
    for key in ('val_dataloader', 'val_cfg', 'val_evaluator',
                'test_dataloader', 'test_cfg', 'test_evaluator'):
        cfg[key] = None
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=-1)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    cfg.default_hooks.visualization = dict(type='DetVisualizationHook',
                                           draw=False)
    # few proposals / RoIs: the C4 head runs layer4 on every RoI
    tc = cfg.model.train_cfg
    tc.rpn_proposal.nms_pre = 200
    tc.rpn_proposal.max_per_img = 32
    tc.rcnn.sampler.num = 16
    tc.rpn.sampler.num = 64
    return cfg


class _CaptureInit(Hook):
    """Weights right after init_weights() (before the first update)."""

    def __init__(self, keys):
        self.keys, self.seen = keys, {}

    def before_train(self, runner):
        sd = runner.model.state_dict()
        self.seen = {k: sd[k].detach().clone() for k in self.keys}


def _train_one_iter(cfg, keys):
    from mmengine.runner import Runner
    runner = Runner.from_cfg(cfg)
    cap = _CaptureInit(keys)
    runner.register_hook(cap, priority='VERY_LOW')
    runner.train()
    loss = runner.message_hub.get_scalar('train/loss').current()
    return cap.seen, float(loss)


def test_pretrain_extract_knn_detect(tmp_path):
    from mmengine.runner import Runner

    # 1. pre-training: 2 iterations of MoCo v2 through the Runner
    cfg = _pretrain_cfg(str(tmp_path / 'pre'))
    Runner.from_cfg(copy.deepcopy(cfg)).train()
    ckpt = osp.join(cfg.work_dir, 'epoch_1.pth')
    assert osp.isfile(ckpt)

    # 2. extraction (online encoder), verified against MMPretrain's ResNet
    #    (MMDetection's loads it in 4a / 4b)
    ebw = _load('tools/model_converters/extract_backbone_weights.py',
                '_ebw_chain')
    bb_file = str(tmp_path / 'backbone.pth')
    res = ebw.extract_backbone(ckpt, bb_file, verify=True,
                               log=lambda *a: None)
    assert res['report']['ok'], res['report']
    assert res['arch']['depth'] == 18 and res['arch']['stem'] == 'imagenet'
    converted = torch.load(bb_file)['state_dict']
    full = torch.load(ckpt)['state_dict']
    assert torch.equal(converted['layer3.0.conv1.weight'],
                       full['backbone.layer3.0.conv1.weight'])

    # 3. weighted kNN: pre-training checkpoint and converted file agree;
    #    k=1 on identical bank / queries is exactly 100 %
    ke = _load('tools/benchmarks/knn_eval.py', '_knn_chain')
    r_full = ke.knn_eval(copy.deepcopy(cfg), ckpt, ks=[1, 200])
    r_bb = ke.knn_eval(copy.deepcopy(cfg), bb_file, ks=[1, 200])
    assert r_full['k=1']['top1'] == pytest.approx(100.0)
    assert r_full['meta']['weights'] == 'full'
    assert r_bb['meta']['weights'] == 'backbone'
    assert r_full['k=200'] == pytest.approx(r_bb['k=200'])
    assert r_full['meta']['bank_size'] == 16
    lp = _load('tools/benchmarks/linear_probe.py', '_lp_chain')
    r_lp = lp.linear_probe(copy.deepcopy(cfg), bb_file, max_iter=200)
    # bank == test images: a linear model separates 16 points in 512-d
    assert r_lp['train_top1'] == pytest.approx(100.0)

    # 4a. one Faster R-CNN C4 iteration (VOC benchmark config) initialised
    #     from the converted file: backbone AND shared head (layer4)
    coco = make_coco(tmp_path / 'coco')
    det = _shrink_for_test(
        Config.fromfile(C4_CFG), str(tmp_path / 'c4'), coco, bb_file,
        with_mask=False)
    det.model.roi_head.shared_head.depth = 18
    det.model.roi_head.shared_head.init_cfg.checkpoint = bb_file
    det.model.rpn_head.in_channels = 256
    det.model.rpn_head.feat_channels = 64
    det.model.roi_head.bbox_roi_extractor.out_channels = 256
    det.model.roi_head.bbox_head.in_channels = 512
    det.model.roi_head.bbox_head.num_classes = 2
    keys = {'backbone.conv1.weight': 'conv1.weight',
            'backbone.bn1.running_mean': 'bn1.running_mean',
            'backbone.layer3.1.conv2.weight': 'layer3.1.conv2.weight',
            'roi_head.shared_head.layer4.0.conv1.weight':
            'layer4.0.conv1.weight',
            'roi_head.shared_head.layer4.1.bn2.weight':
            'layer4.1.bn2.weight'}
    seen, loss = _train_one_iter(det, list(keys))
    for det_key, bb_key in keys.items():
        assert torch.equal(seen[det_key], converted[bb_key]), det_key
    assert np.isfinite(loss)

    # 4b. one Mask R-CNN FPN iteration (COCO benchmark config), masks used
    det = _shrink_for_test(
        Config.fromfile(FPN_CFG), str(tmp_path / 'fpn'), coco, bb_file,
        with_mask=True)
    det.model.neck.in_channels = [64, 128, 256, 512]
    det.model.roi_head.bbox_head.num_classes = 2
    det.model.roi_head.mask_head.num_classes = 2
    keys = {'backbone.conv1.weight': 'conv1.weight',
            'backbone.layer4.1.conv2.weight': 'layer4.1.conv2.weight'}
    seen, loss = _train_one_iter(det, list(keys))
    for det_key, bb_key in keys.items():
        assert torch.equal(seen[det_key], converted[bb_key]), det_key
    assert np.isfinite(loss)
