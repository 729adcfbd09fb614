"""InterCLR under DDP: 2 processes (gloo, CPU), a real Runner with
MMDistributedDataParallel and InterCLRHook; the replicated state (bank,
labels, centroids, queue, split counter) must be identical on both ranks and
built from both ranks' samples."""
import tempfile
import uuid

import pytest
import torch

from mmssl_ext.testing import run_in_processes

N = 16
CE = dict(type='CrossEntropyLoss')
DATA = dict(type='SyntheticImageDataset', num_samples=N, num_classes=4,
            img_size=16)
STATE = ('memory.bank', 'memory.label_bank', 'memory.centroids',
         'memory.num_splits', 'memory.initialized', 'intra_queue.queue',
         'intra_queue.ptr', 'sampling_step', 'backbone.conv1.weight',
         'neck.mlp.0.weight')


def _train(rank, world_size, work_dir, share_neck):
    import mmssl_ext  # noqa: F401
    from mmengine.hooks import Hook
    from mmengine.runner import Runner
    from mmpretrain.utils import get_ori_model

    class KeepInit(Hook):
        priority = 'LOWEST'  # after InterCLRHook.before_train

        def before_train(self, runner):
            self.bank = get_ori_model(runner.model).memory.bank.clone()

    keep = KeepInit()
    model = dict(
        type='InterCLRMoCo',
        data_preprocessor=dict(type='SelfSupDataPreprocessor',
                               mean=[127.5] * 3, std=[127.5] * 3,
                               to_rgb=False),
        backbone=dict(type='ResNet_CIFAR', depth=18, stem_channels=4,
                      base_channels=4, norm_cfg=dict(type='BN')),
        neck=dict(type='MoCoV2Neck', in_channels=32, hid_channels=16,
                  out_channels=8, with_avg_pool=True),
        head=dict(type='MarginContrastiveHead', loss=CE, temperature=0.2),
        memory=dict(type='ClusterMemory', length=N, num_clusters=4,
                    momentum=1.0, min_cluster=3),
        queue_len=12, feat_dim=8, momentum=0.01, neg_num=4,
        semihard_neg_pool_num=8, semieasy_neg_pool_num=8,
        share_neck=share_neck)
    hook = dict(
        type='InterCLRHook',
        extract_dataloader=dict(
            batch_size=4, num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=False),
            collate_fn=dict(type='default_collate'),
            dataset=dict(DATA, pipeline=[dict(type='PackInputs')])),
        clustering=dict(backend='torch'),
        centroids_update_interval=2)
    runner = Runner(
        model=model,
        work_dir=work_dir,
        experiment_name=f'interclr-ddp-{uuid.uuid4().hex[:8]}',
        launcher='pytorch',
        cfg=dict(model_wrapper_cfg=dict(type='MMDistributedDataParallel',
                                        broadcast_buffers=False,
                                        device_ids=None)),
        train_dataloader=dict(
            batch_size=4, num_workers=0, drop_last=True,
            sampler=dict(type='DefaultSampler', shuffle=True),
            collate_fn=dict(type='default_collate'),
            dataset=dict(DATA, pipeline=[
                dict(type='MultiView', num_views=2,
                     transforms=[[dict(type='RandomFlip', prob=0.5)]]),
                dict(type='PackInputs')])),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.05,
                                          momentum=0.9)),
        train_cfg=dict(by_epoch=True, max_epochs=1),
        custom_hooks=[hook, keep],
        default_hooks=dict(logger=dict(type='LoggerHook', interval=1),
                           checkpoint=None),
        randomness=dict(seed=0),
        default_scope='mmssl_ext')
    runner.train()
    m = get_ori_model(runner.model)
    sd = m.state_dict()
    return dict(state={k: sd[k].clone() for k in STATE},
                init_bank=keep.bank, wrapped=type(runner.model).__name__)


@pytest.mark.parametrize('share_neck', [True, False])
def test_state_identical_on_both_ranks(share_neck):
    with tempfile.TemporaryDirectory() as d:
        r0, r1 = run_in_processes(_train, world_size=2,
                                  args=(d, share_neck), timeout=300)
    assert r0['wrapped'] == 'MMDistributedDataParallel'
    for key in STATE:
        assert torch.equal(r0['state'][key], r1['state'][key]), key
    # 2 ranks x 4 keys x 2 iterations entered the queue (all-gathered)
    assert int(r0['state']['intra_queue.ptr']) == (2 * 4 * 2) % 12
    # every sample was seen by one of the two ranks in the epoch: every bank
    # row was replaced on both ranks (gathered updates, no broadcast)
    changed = (r0['state']['memory.bank'] - r0['init_bank']).abs().sum(1)
    assert (changed > 0).all()
    assert torch.equal(r0['init_bank'], r1['init_bank'])
    hist = torch.bincount(r0['state']['memory.label_bank'], minlength=4)
    assert hist.min() >= 1  # small-cluster pass ran: no empty cluster
