"""InterCLR under DDP: 2 processes (gloo, CPU), a real Runner with
MMDistributedDataParallel and InterCLR's hooks; the replicated state (bank,
labels, centroids, queue, split counter) must be identical on both ranks and
built from both ranks' samples."""
import tempfile
import uuid

import pytest
import torch

from mmssl_testing import run_in_processes

N = 16
CE = dict(type='CrossEntropyLoss')
DATA = dict(type='SyntheticImageDataset', num_samples=N, num_classes=4,
            img_size=16)
M = 'branches.0.memory.'  # the inter-image branch's memory
STATE = (M + 'bank', M + 'label_bank', M + 'centroids', M + 'num_splits',
         M + 'initialized', 'queue.queue', 'queue.ptr',
         'branches.0.sampling_step', 'backbone.conv1.weight',
         'neck.mlp.0.weight')


def _train(rank, world_size, work_dir, share_neck):
    import mmssl_ext  # noqa: F401
    from mmengine.hooks import Hook
    from mmengine.runner import Runner
    from mmpretrain.utils import get_ori_model

    class KeepInit(Hook):
        priority = 'LOWEST'  # after OfflineClusterHook.before_train

        def before_train(self, runner):
            self.bank = get_ori_model(runner.model).branches[0].memory.bank.clone()

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
    hooks = [
        dict(type='OfflineClusterHook',
             extract_dataloader=dict(
                 batch_size=4, num_workers=0,
                 sampler=dict(type='DefaultSampler', shuffle=False),
                 collate_fn=dict(type='default_collate'),
                 dataset=dict(DATA, pipeline=[dict(type='PackInputs')])),
             clustering=dict(backend='torch')),
        dict(type='ClusterMemoryHook', centroids_update_interval=2)]
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
        custom_hooks=hooks + [keep],
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
    assert int(r0['state']['queue.ptr']) == (2 * 4 * 2) % 12
    # every sample was seen by one of the two ranks in the epoch: every bank
    # row was replaced on both ranks (gathered updates, no broadcast)
    changed = (r0['state'][M + 'bank'] - r0['init_bank']).abs().sum(1)
    assert (changed > 0).all()
    assert torch.equal(r0['init_bank'], r1['init_bank'])
    hist = torch.bincount(r0['state'][M + 'label_bank'], minlength=4)
    assert hist.min() >= 1  # small-cluster pass ran: no empty cluster


# ---------------------------------------------------------------------------
# 2 ranks x batch b == 1 process x batch 2b
# ---------------------------------------------------------------------------
EQ_N, EQ_B, EQ_STEPS = 24, 8, 4  # global batch 8 = 2 ranks x 4


def _eq_batches():
    g = torch.Generator().manual_seed(0)
    out = []
    for _ in range(EQ_STEPS):
        views = [torch.randn(EQ_B, 3, 16, 16, generator=g) for _ in range(2)]
        idx = torch.randperm(EQ_N, generator=g)[:EQ_B]
        out.append((views, idx))
    return out


def _eq_steps(rank, world_size):
    """The model alone (no Runner): fixed initial memory, then EQ_STEPS
    train steps with the hook's per-iteration work (small-cluster pass every
    step, centroid refresh every 2) done by hand. lr = 0 so the encoders are
    the same in both settings and the state depends only on how the batch
    was split: this isolates the gathers, updates and rank-0 broadcasts.
    GroupNorm backbone: features do not depend on the split."""
    import mmssl_ext  # noqa: F401
    from mmengine.model import MMDistributedDataParallel
    from mmengine.optim import OptimWrapper
    from mmengine.registry import DefaultScope
    from mmpretrain.structures import DataSample

    from mmssl_ext.registry import MODELS
    DefaultScope.get_instance(f'interclr-eq-{rank}-{world_size}',
                              scope_name='mmssl_ext')
    torch.manual_seed(0)
    model = MODELS.build(dict(
        type='InterCLRMoCo',
        data_preprocessor=dict(type='SelfSupDataPreprocessor'),
        backbone=dict(type='ResNet_CIFAR', depth=18, stem_channels=4,
                      base_channels=4,
                      norm_cfg=dict(type='GN', num_groups=2,
                                    requires_grad=True),
                      zero_init_residual=False),
        neck=dict(type='MoCoV2Neck', in_channels=32, hid_channels=16,
                  out_channels=8, with_avg_pool=True),
        head=dict(type='MarginContrastiveHead', loss=CE, temperature=0.2),
        memory=dict(type='ClusterMemory', length=EQ_N, num_clusters=4,
                    momentum=1.0, min_cluster=5),
        queue_len=20, feat_dim=8, momentum=0.01, neg_num=4,
        semihard_neg_pool_num=8, semieasy_neg_pool_num=8,
        sampling_seed=7))
    g = torch.Generator().manual_seed(1)
    feats = torch.randn(EQ_N, 8, generator=g)
    labels = torch.arange(EQ_N) % 4
    model.branches[0].memory.init_memory(feats, labels)
    ori = model
    if world_size > 1:
        model = MMDistributedDataParallel(module=model, device_ids=None,
                                          broadcast_buffers=False)
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.0,
                                         momentum=0.9))
    per = EQ_B // world_size
    states, logs = [], []
    for step, (views, idx) in enumerate(_eq_batches()):
        sl = slice(rank * per, (rank + 1) * per)
        data = dict(inputs=[v[sl] for v in views],
                    data_samples=[DataSample(metainfo=dict(sample_idx=int(i)))
                                  for i in idx[sl]])
        log = model.train_step(data, optim)
        ori.branches[0].memory.deal_with_small_clusters()
        if step % 2 == 1:
            ori.branches[0].memory.update_centroids()
        logs.append({k: float(v.detach()) for k, v in log.items()})
        sd = ori.state_dict()
        states.append({k: sd[k].clone() for k in (
            M + 'bank', M + 'label_bank', M + 'centroids', M + 'num_splits',
            'queue.queue', 'queue.ptr')})
    return states, logs


def test_two_ranks_equal_one_process_with_double_batch():
    r0, r1 = run_in_processes(_eq_steps, world_size=2, timeout=300)
    single_states, single_logs = _eq_steps(0, 1)
    for step in range(EQ_STEPS):
        s0, s1, ss = r0[0][step], r1[0][step], single_states[step]
        for k in ss:
            assert torch.equal(s0[k], s1[k]), (step, k)  # replicas
            if ss[k].is_floating_point():
                torch.testing.assert_close(s0[k], ss[k], rtol=1e-5,
                                           atol=1e-6, msg=f'{step} {k}')
            else:
                assert torch.equal(s0[k], ss[k]), (step, k)
        # online relabelling saw the whole global batch on every rank
        assert r0[1][step]['change_ratio'] == r1[1][step]['change_ratio']
        assert abs(r0[1][step]['change_ratio'] -
                   single_logs[step]['change_ratio']) < 1e-6
        # the intra (MoCo) loss has no random draws: the mean of the two
        # ranks' batch means is the global batch mean
        mean = (r0[1][step]['loss_intra'] + r1[1][step]['loss_intra']) / 2
        assert abs(mean - single_logs[step]['loss_intra']) < 1e-5, step
    # the queue wrapped (4 steps x 8 keys > 20) and relabelling happened
    assert int(single_states[-1]['queue.ptr']) == (EQ_STEPS * EQ_B) % 20
    first = single_states[0][M + 'label_bank']
    assert not torch.equal(first, torch.arange(EQ_N) % 4) or int(
        single_states[-1][M + 'num_splits']) > 0
