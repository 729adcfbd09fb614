"""Composed models under DDP: 2 processes (gloo, CPU), a real Runner with
MMDistributedDataParallel and the inter-image branch's hooks, on MoCo
(negatives, MMPretrain's queue) and BYOL (none), each with the inter-image,
group and mixture branches. Every piece of replicated state -- weights,
momentum encoder / target network, queue and pointer, memory bank,
pseudo-labels, centroids, split counter, sampling step -- must be identical
on both ranks (BN running statistics are per rank, as in any DDP run
without buffer broadcast), and built from both ranks' samples."""
import tempfile
import uuid

import pytest
import torch

from mmssl_testing import run_in_processes

N = 16
DATA = dict(type='SyntheticImageDataset', num_samples=N, num_classes=4,
            img_size=16)
BB = dict(type='ResNet_CIFAR', depth=18, stem_channels=4, base_channels=4,
          norm_cfg=dict(type='BN'))
CE = dict(type='CrossEntropyLoss')
NECK = dict(type='NonLinearNeck', in_channels=32, hid_channels=16,
            out_channels=8, with_avg_pool=True, norm_cfg=dict(type='BN1d'))
BASES = dict(
    MoCo=dict(type='MoCo', backbone=BB, queue_len=16, feat_dim=8,
              momentum=0.01,
              neck=dict(type='MoCoV2Neck', in_channels=32, hid_channels=16,
                        out_channels=8, with_avg_pool=True),
              head=dict(type='ContrastiveHead', loss=CE, temperature=0.2)),
    BYOL=dict(type='BYOL', backbone=BB, base_momentum=0.01, neck=NECK,
              head=dict(type='LatentPredictHead',
                        loss=dict(type='CosineSimilarityLoss'),
                        predictor=dict(NECK, in_channels=8,
                                       with_avg_pool=False))),
)
BRANCHES = [
    dict(type='InterImageBranch',
         memory=dict(type='ClusterMemory', length=N, feat_dim=8,
                     num_clusters=4, momentum=1.0, min_cluster=3),
         neg_num=4, semihard_neg_pool_num=8),
    dict(type='GroupBranch', num_groups=2, gather=True,
         neck=dict(type='CLDNeck', in_channels=32, out_channels=8,
                   with_group=False)),
    dict(type='MixtureBranch'),
]
PER_RANK = dict(running_mean=1, running_var=1, num_batches_tracked=1)


def _train(rank, world_size, work_dir, fw):
    import mmssl_ext  # noqa: F401
    from mmengine.hooks import Hook
    from mmengine.runner import Runner
    from mmpretrain.utils import get_ori_model

    class Keep(Hook):
        priority = 'LOWEST'  # after OfflineClusterHook.before_train

        def before_train(self, runner):
            self.bank = get_ori_model(
                runner.model).branches[0].memory.bank.clone()

        def after_train_iter(self, runner, batch_idx, data_batch=None,
                             outputs=None):
            self.last = {k: float(v) for k, v in outputs.items()}

    keep = Keep()
    runner = Runner(
        model=dict(
            type='ComposedSSL', base=BASES[fw], branches=BRANCHES,
            data_preprocessor=dict(type='SelfSupDataPreprocessor',
                                   mean=[127.5] * 3, std=[127.5] * 3,
                                   to_rgb=False)),
        work_dir=work_dir,
        experiment_name=f'composed-ddp-{uuid.uuid4().hex[:8]}',
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
        custom_hooks=[
            dict(type='OfflineClusterHook',
                 extract_dataloader=dict(
                     batch_size=4, num_workers=0,
                     sampler=dict(type='DefaultSampler', shuffle=False),
                     collate_fn=dict(type='default_collate'),
                     dataset=dict(DATA, pipeline=[dict(type='PackInputs')])),
                 clustering=dict(backend='torch')),
            dict(type='ClusterMemoryHook', centroids_update_interval=1),
            keep
        ],
        default_hooks=dict(logger=dict(type='LoggerHook', interval=1),
                           checkpoint=None),
        randomness=dict(seed=0),
        default_scope='mmssl_ext')
    runner.train()
    sd = get_ori_model(runner.model).state_dict()
    return dict(state={k: v.clone() for k, v in sd.items()},
                init_bank=keep.bank, last=keep.last,
                wrapped=type(runner.model).__name__)


@pytest.mark.parametrize('fw', sorted(BASES))
def test_state_identical_on_both_ranks(fw):
    with tempfile.TemporaryDirectory() as d:
        r0, r1 = run_in_processes(_train, world_size=2, args=(d, fw),
                                  timeout=300)
    assert r0['wrapped'] == 'MMDistributedDataParallel'
    s0, s1 = r0['state'], r1['state']
    assert set(s0) == set(s1)
    compared = 0
    for key in s0:
        if key.split('.')[-1] in PER_RANK:
            continue
        assert torch.equal(s0[key], s1[key]), key
        compared += 1
    assert compared > 50
    mem = 'branches.0.memory.'
    assert int(s0['branches.0.sampling_step']) == 2  # 2 iterations
    if fw == 'MoCo':  # 2 ranks x 4 keys x 2 iterations, all-gathered
        assert int(s0['queue_ptr']) == 2 * 4 * 2 % 16
    # every sample was seen by one of the two ranks: every bank row was
    # replaced on both ranks (gathered updates, no broadcast)
    changed = (s0[mem + 'bank'] - r0['init_bank']).abs().sum(1)
    assert (changed > 0).all()
    assert torch.equal(r0['init_bank'], r1['init_bank'])
    assert torch.bincount(s0[mem + 'label_bank'], minlength=4).min() >= 1
    for key in ('loss_inter', 'loss_group', 'loss_bsim'):
        assert key in r0['last'] and r0['last'][key] != 0, key
