"""ContrastiveCrop stays a transform + a hook and combines with every
composed model: a real Runner trains each framework with branches on
ContrastiveCrop views, the hook refreshes the boxes from the composed
model's backbone, and every later training sample is cropped with the box
the store holds."""
import numpy as np
import pytest
import torch
from mmengine.hooks import Hook
from mmengine.logging import MessageHub
from mmengine.runner import Runner

from mmssl_ext.ccrop.box_store import find_box_dataset
from mmssl_ext.ccrop import ContrastiveCropHook
from .tiny import PRE, composed, inter_branch

N = 16
DATA = dict(type='SyntheticImageDataset', num_samples=N, img_size=16)
INTER = inter_branch(memory=dict(type='ClusterMemory', length=N, feat_dim=8,
                                 num_clusters=3, momentum=1.0,
                                 min_cluster=2))
INTER_HOOKS = [
    dict(type='OfflineClusterHook',
         extract_dataloader=dict(
             batch_size=8, num_workers=0,
             sampler=dict(type='DefaultSampler', shuffle=False),
             collate_fn=dict(type='default_collate'),
             dataset=dict(DATA, pipeline=[dict(type='PackInputs')])),
         clustering=dict(backend='torch')),
    dict(type='ClusterMemoryHook', centroids_update_interval=2)
]
#: framework -> branches (MoCo: the stack of the digits matrix)
CASES = dict(MoCo=(INTER, 'group'), SimCLR=('mixture', ),
             BYOL=('group', 'mixture'), SimSiam=(INTER, ))


class _BoxCheck(Hook):
    priority = 'LOWEST'

    def __init__(self):
        self.n_checked, self.losses = 0, []

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        store = find_box_dataset(runner.train_dataloader.dataset).store
        for ds in data_batch['data_samples']:
            box = ds.metainfo.get('ccrop_box', None)
            assert (box is not None) == store.active
            if box is not None:
                np.testing.assert_array_equal(
                    box, store.boxes[ds.sample_idx].numpy())
                self.n_checked += 1
        self.losses.append(float(outputs['loss']))


@pytest.mark.parametrize('fw', sorted(CASES))
def test_contrastive_crop_with_composed_models(tmp_path, fw):
    MessageHub.get_current_instance().update_info('max_iters', 6)
    view = [dict(type='ContrastiveCrop', scale=16, alpha=0.1,
                 crop_ratio_range=(0.2, 1.0), backend='pillow')]
    branches = CASES[fw]
    hooks = INTER_HOOKS if INTER in branches else []
    check = _BoxCheck()
    runner = Runner(
        model=composed(fw, *branches, data_preprocessor=PRE),
        work_dir=str(tmp_path),
        train_dataloader=dict(
            batch_size=8, num_workers=0, drop_last=True,
            sampler=dict(type='DefaultSampler', shuffle=True),
            collate_fn=dict(type='default_collate'),
            dataset=dict(
                type='ContrastiveCropDataset',
                dataset=dict(DATA, pipeline=[
                    dict(type='MultiView', num_views=2, transforms=[view]),
                    dict(type='PackInputs',
                         meta_keys=('sample_idx', 'ccrop_box'))
                ]))),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.05,
                                          momentum=0.9)),
        train_cfg=dict(type='EpochBasedTrainLoop', max_epochs=3),
        default_hooks=dict(logger=dict(type='LoggerHook', interval=1),
                           checkpoint=None),
        custom_hooks=hooks + [
            dict(type='ContrastiveCropHook', warmup_epochs=1, interval=1,
                 progress=False, batch_size=8), check
        ],
        randomness=dict(seed=0),
        default_scope='mmssl_ext',
        log_level='WARNING')
    runner.train()
    hook = [h for h in runner.hooks if isinstance(h, ContrastiveCropHook)][0]
    assert hook.last_refresh_epoch == 2
    assert check.n_checked == 2 * N  # epochs 2 and 3 used the boxes
    boxes = find_box_dataset(runner.train_dataloader.dataset).store.boxes
    assert ((boxes >= 0) & (boxes <= 1)).all()
    assert np.isfinite(check.losses).all() and len(check.losses) == 6
    assert torch.isfinite(runner.model.backbone.conv1.weight).all()
