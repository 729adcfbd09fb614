"""ContrastiveCropHook: heatmap -> box by hand, schedule, real Runner with
MMPretrain's SimCLR / MoCo / BYOL / SimSiam (persistent workers), resume."""
import copy

import numpy as np
import pytest
import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner

from mmssl_ext.ccrop.box_store import find_box_dataset
from mmssl_ext.ccrop import ContrastiveCropHook
from mmssl_ext.ccrop.hook import heatmap_boxes
from mmssl_ext.registry import HOOKS

# -- heatmap -> box, by hand ----------------------------------------------


def test_heatmap_box_by_hand_no_resize():
    """Input size == feature size: bilinear resize is the identity.
    A (4x5) = channel sum; after min-max: rows' maxima 0, .1, 1, .4 ->
    rows {2, 3} (0.1 is not > 0.1); columns' maxima 0, .3, 1, .2, 0 ->
    columns {1, 2, 3}; box = (2/4, 1/5, 3/4, 3/5)."""
    a = torch.tensor([[0, 0, 0, 0, 0], [0, 0, 1, 0, 0], [0, 3, 10, 0, 0],
                      [0, 0, 4, 2, 0]], dtype=torch.float32) + 7.
    part = torch.randint(-5, 6, (4, 5)).float()  # exact sums
    feat = torch.stack([a - part, part])[None]  # (1, 2, 4, 5), sum == a
    box = heatmap_boxes(feat, (4, 5), threshold=0.1)
    torch.testing.assert_close(box, torch.tensor([[0.5, 0.2, 0.75, 0.6]]))
    box = heatmap_boxes(feat, (4, 5), threshold=0.35)  # rows {2,3}, cols {2}
    torch.testing.assert_close(box, torch.tensor([[0.5, 0.4, 0.75, 0.4]]))


def test_heatmap_box_by_hand_with_upsampling():
    """2x2 map [[0, 0], [0, 1]] -> 4x4 (align_corners=False): along each
    axis the weights give [0, .25, .75, 1], value(y, x) = f(y) f(x).
    t=0.1: rows/cols 1..3 -> (1/4, 1/4, 3/4, 3/4); t=0.5: 2..3."""
    feat = torch.tensor([[0., 0.], [0., 1.]]).view(1, 1, 2, 2)
    torch.testing.assert_close(
        heatmap_boxes(feat, (4, 4), 0.1), torch.tensor([[.25, .25, .75,
                                                         .75]]))
    torch.testing.assert_close(
        heatmap_boxes(feat, (4, 4), 0.5), torch.tensor([[.5, .5, .75,
                                                         .75]]))
    # batch of two, second one transposed
    two = torch.cat([feat, feat.transpose(2, 3) * 3 + 1])
    assert heatmap_boxes(two, (4, 4), 0.5).shape == (2, 4)


def test_constant_heatmap_gives_full_box():
    feat = torch.ones(2, 3, 4, 4)
    torch.testing.assert_close(
        heatmap_boxes(feat, (8, 8), 0.1), torch.tensor([[0., 0., 1., 1.]] *
                                                       2))


@pytest.mark.parametrize('kw, key', [
    (dict(threshold=0.), 'threshold'),
    (dict(threshold=1.), 'threshold'),
    (dict(threshold=-0.2), 'threshold'),
    (dict(threshold=1.5), 'threshold'),
    (dict(warmup_epochs=-1), 'warmup_epochs'),
    (dict(interval=0), 'interval'),
    (dict(batch_size=0), 'batch_size'),
])
def test_bad_config(kw, key):
    with pytest.raises(ValueError, match=key):
        HOOKS.build(dict(type='ContrastiveCropHook', **kw))


# -- real Runner ---------------------------------------------------------

_BB = dict(type='ResNet_CIFAR', depth=18, stem_channels=4, base_channels=4,
           norm_cfg=dict(type='BN'))
_PRE = dict(type='SelfSupDataPreprocessor', mean=[127.5] * 3,
            std=[127.5] * 3, to_rgb=False)
_NECK = dict(type='NonLinearNeck', in_channels=32, hid_channels=16,
             out_channels=8, num_layers=2, with_avg_pool=True)
MODELS = {
    'SimCLR':
    dict(type='SimCLR', backbone=_BB, neck=_NECK, data_preprocessor=_PRE,
         head=dict(type='ContrastiveHead',
                   loss=dict(type='CrossEntropyLoss'), temperature=0.5)),
    'MoCo':
    dict(type='MoCo', queue_len=16, feat_dim=8, momentum=0.01,
         backbone=_BB, data_preprocessor=_PRE,
         neck=dict(type='MoCoV2Neck', in_channels=32, hid_channels=16,
                   out_channels=8, with_avg_pool=True),
         head=dict(type='ContrastiveHead',
                   loss=dict(type='CrossEntropyLoss'), temperature=0.2)),
    'BYOL':
    dict(type='BYOL', base_momentum=0.004, backbone=_BB,
         data_preprocessor=_PRE, neck=_NECK,
         head=dict(type='LatentPredictHead',
                   loss=dict(type='CosineSimilarityLoss'),
                   predictor=dict(type='NonLinearNeck', in_channels=8,
                                  hid_channels=16, out_channels=8,
                                  with_avg_pool=False))),
    'SimSiam':
    dict(type='SimSiam', backbone=_BB, data_preprocessor=_PRE,
         neck=dict(type='NonLinearNeck', in_channels=32, hid_channels=16,
                   out_channels=16, num_layers=3,
                   with_last_bn_affine=False, with_avg_pool=True),
         head=dict(type='LatentPredictHead',
                   loss=dict(type='CosineSimilarityLoss'),
                   predictor=dict(type='NonLinearNeck', in_channels=16,
                                  hid_channels=8, out_channels=16,
                                  with_avg_pool=False, with_last_bn=False,
                                  with_last_bias=True))),
}


class _Recorder(Hook):
    """Checks, at every iteration, that the box each training sample was
    cropped with (packed by PackInputs) is the store's current box, and
    records losses and the active flag per epoch."""
    priority = 'LOWEST'

    def __init__(self):
        self.losses, self.active, self.n_checked = [], {}, 0

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        store = find_box_dataset(runner.train_dataloader.dataset).store
        self.active[runner.epoch] = store.active
        for ds in data_batch['data_samples']:
            box = ds.metainfo.get('ccrop_box', None)
            assert (box is not None) == store.active
            if box is not None:
                np.testing.assert_array_equal(
                    box, store.boxes[ds.sample_idx].numpy())
                self.n_checked += 1
        self.losses.append(float(outputs['loss'].detach()))


def _cfg(tmp_path, algo='MoCo', max_epochs=3, num_workers=0,
         persistent=False, hook=None, ckpt_interval=1):
    view = [dict(type='ContrastiveCrop', scale=16, alpha=0.1,
                 crop_ratio_range=(0.2, 1.0), backend='pillow'),
            dict(type='RandomFlip', prob=0.5)]
    pipeline = [
        dict(type='MultiView', num_views=2, transforms=[view]),
        dict(type='PackInputs', meta_keys=('sample_idx', 'ccrop_box'))
    ]
    return dict(
        model=copy.deepcopy(MODELS[algo]),
        work_dir=str(tmp_path),
        train_dataloader=dict(
            batch_size=8,
            num_workers=num_workers,
            persistent_workers=persistent,
            drop_last=True,
            sampler=dict(type='DefaultSampler', shuffle=True),
            collate_fn=dict(type='default_collate'),
            dataset=dict(
                type='ContrastiveCropDataset',
                dataset=dict(type='SyntheticImageDataset', num_samples=24,
                             img_size=16, pipeline=pipeline))),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.05,
                                          momentum=0.9)),
        train_cfg=dict(type='EpochBasedTrainLoop', max_epochs=max_epochs),
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=1),
            checkpoint=dict(type='CheckpointHook',
                            interval=ckpt_interval)),
        custom_hooks=[
            hook or dict(type='ContrastiveCropHook', warmup_epochs=1,
                         interval=1, progress=False)
        ],
        randomness=dict(seed=0, deterministic=True),
        default_scope='mmssl_ext',
        env_cfg=dict(dist_cfg=dict(backend='gloo')),
        log_level='WARNING')


def _hook(runner, cls):
    return [h for h in runner.hooks if isinstance(h, cls)][0]


@pytest.mark.parametrize('algo', ['SimCLR', 'MoCo', 'BYOL', 'SimSiam'])
def test_runner_updates_boxes(tmp_path, algo):
    runner = Runner(**_cfg(tmp_path, algo, max_epochs=3))
    rec = _Recorder()
    runner.register_hook(rec)
    runner.train()
    hook = _hook(runner, ContrastiveCropHook)
    store = find_box_dataset(runner.train_dataloader.dataset).store
    # epoch 1 warm-up (RRC), epochs 2-3 use boxes refreshed after 1 and 2;
    # no refresh after the last epoch
    assert rec.active == {0: False, 1: True, 2: True}
    assert hook.last_refresh_epoch == 2 and hook.last_refresh_time > 0
    assert rec.n_checked == 2 * 24
    b = store.boxes
    assert ((b >= 0) & (b <= 1)).all()
    assert (b[:, 2] >= b[:, 0]).all() and (b[:, 3] >= b[:, 1]).all()
    assert np.isfinite(rec.losses).all()
    assert 'train/ccrop_refresh_time' in runner.message_hub.log_scalars


def test_refresh_matches_independent_computation(tmp_path):
    """The boxes written by a refresh equal heatmap_boxes of the backbone's
    last stage on every training image (test pipeline), in index order."""
    runner = Runner(**_cfg(tmp_path, 'SimCLR', max_epochs=1))
    runner.train()
    hook = _hook(runner, ContrastiveCropHook)
    box_ds = find_box_dataset(runner.train_dataloader.dataset)
    hook.refresh(runner)
    model = runner.model
    assert model.training  # mode restored after the refresh
    model.eval()
    ds = box_ds.dataset
    imgs = torch.stack([
        torch.from_numpy(ds.get_data_info(i)['img']).permute(2, 0, 1)
        for i in range(len(ds))
    ]).float()
    x = (imgs - 127.5) / 127.5
    with torch.no_grad():  # same batches as the refresh (8, in order)
        ref = torch.cat([
            heatmap_boxes(model.backbone(x[i:i + 8])[-1], (16, 16))
            for i in range(0, 24, 8)
        ])
    torch.testing.assert_close(box_ds.store.boxes, ref, rtol=0, atol=1e-6)
    assert not torch.equal(ref, torch.tensor([[0., 0, 1, 1]] * 24))


def test_persistent_workers_end_to_end(tmp_path):
    runner = Runner(**_cfg(tmp_path, 'MoCo', max_epochs=3, num_workers=2,
                           persistent=True))
    rec = _Recorder()
    runner.register_hook(rec)
    runner.train()
    # every sample of epochs 2 and 3 was cropped with the box the store held
    assert rec.n_checked == 2 * 24
    assert rec.active == {0: False, 1: True, 2: True}


def test_schedule(tmp_path):
    """warm-up 2, interval 3, 7 epochs: active from epoch 3 (1-based);
    refresh after epochs 3 and 6 (multiples of 3, >= 2, not the last)."""
    calls = []

    class _Spy(ContrastiveCropHook):

        def refresh(self, runner):
            calls.append(runner.epoch + 1)

    runner = Runner(**_cfg(
        tmp_path, 'SimCLR', max_epochs=7,
        hook=_Spy(warmup_epochs=2, interval=3), ckpt_interval=100))
    rec = _Recorder()
    runner.register_hook(rec)
    runner.train()
    assert calls == [3, 6]
    assert [rec.active[e] for e in range(7)] == [False] * 2 + [True] * 5


def test_resume_restores_boxes_exactly(tmp_path):
    """Uninterrupted 4 epochs vs. resume from epoch 2: the boxes after
    loading equal the checkpoint's, and the rest of the run (boxes, losses)
    is identical."""
    cfg = _cfg(tmp_path / 'a', 'MoCo', max_epochs=4, num_workers=1)
    ra = Runner(**cfg)
    rec_a = _Recorder()
    ra.register_hook(rec_a)
    ra.train()
    boxes_a = find_box_dataset(ra.train_dataloader.dataset).store.boxes
    ckpt = torch.load(str(tmp_path / 'a' / 'epoch_2.pth'))
    saved = ckpt['contrastive_crop']
    assert saved['active'] and saved['last_refresh_epoch'] == 2
    assert not torch.equal(saved['boxes'], torch.tensor([[0., 0, 1, 1]] *
                                                        24))

    class _AtStart(Hook):
        priority = 'LOWEST'

        def __init__(self):
            self.seen = []

        def before_train_epoch(self, runner):
            self.seen.append(find_box_dataset(
                runner.train_dataloader.dataset).store.boxes.clone())

    cfg_b = _cfg(tmp_path / 'b', 'MoCo', max_epochs=4, num_workers=1)
    cfg_b.update(resume=True, load_from=str(tmp_path / 'a' / 'epoch_2.pth'))
    rb = Runner(**cfg_b)
    rec_b, start = _Recorder(), _AtStart()
    rb.register_hook(rec_b)
    rb.register_hook(start)
    rb.train()
    assert torch.equal(start.seen[0], saved['boxes'])  # epoch 3 starts
    boxes_b = find_box_dataset(rb.train_dataloader.dataset).store.boxes
    assert torch.equal(boxes_a, boxes_b)
    n = len(rec_b.losses)
    assert n == 2 * 3
    assert rec_a.losses[-n:] == rec_b.losses


def test_missing_wrapper_error(tmp_path):
    cfg = _cfg(tmp_path, 'SimCLR', max_epochs=1)
    cfg['train_dataloader']['dataset'] = cfg['train_dataloader']['dataset'][
        'dataset']
    runner = Runner(**cfg)
    with pytest.raises(TypeError, match='ContrastiveCropDataset'):
        runner.train()


def test_resume_with_another_length_raises():
    """The boxes keep the memory contract: a checkpoint whose box count is
    not the training set's length raises (naming the checkpoint entry)
    instead of training on whole-image boxes."""
    from mmssl_ext.ccrop import ContrastiveCropDataset
    inner = dict(type='SyntheticImageDataset', num_samples=6, num_classes=2,
                 img_size=16, seed=0, pipeline=[])
    ds = ContrastiveCropDataset(inner)
    hook = ContrastiveCropHook(warmup_epochs=0, interval=1)
    state = dict(boxes=torch.tensor([[0., 0., .5, .5]] * 4), active=True,
                 last_refresh_epoch=2)
    with pytest.raises(ValueError, match=r'contrastive_crop\.boxes.*4 rows'
                       r'.*6 samples'):
        hook._load_state(ds, state)
    assert torch.equal(ds.store.boxes, torch.tensor([[0., 0., 1., 1.]] * 6))
