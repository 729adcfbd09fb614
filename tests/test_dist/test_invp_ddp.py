"""InvP under DDP: 2 processes (gloo, CPU) with MMDistributedDataParallel.
The memory bank and the neighbour table must be identical on both ranks
after every step, built from both ranks' samples, and equal to one process
fed the concatenated global batch (GroupNorm backbone: features do not
depend on how the batch is split)."""
import copy

import torch

from mmssl_testing import run_in_processes

N, B, STEPS = 24, 8, 3  # global batch 8 = 2 ranks x 4
MODEL = dict(
    type='InvP',
    memory=dict(type='NeighbourMemory', length=N, feat_dim=8,
                num_neighbours=2, init='uniform'),
    ramp_up='none',
    data_preprocessor=dict(type='SelfSupDataPreprocessor'),
    backbone=dict(type='ResNet_CIFAR', depth=18, stem_channels=4,
                  base_channels=4,
                  norm_cfg=dict(type='GN', num_groups=2, requires_grad=True),
                  zero_init_residual=False),
    neck=dict(type='MoCoV2Neck', in_channels=32, hid_channels=16,
              out_channels=8, with_avg_pool=True),
    loss=dict(type='InvPLoss', temperature=0.2, n_background=10,
              diffusion_layer=2, n_pos=3, knn_backend='torch'))


def _global_batches():
    g = torch.Generator().manual_seed(0)
    out = []
    for _ in range(STEPS):
        x = torch.randn(B, 3, 16, 16, generator=g)
        idx = torch.randperm(N, generator=g)[:B]
        out.append((x, idx))
    return out


def _steps(rank, world_size):
    import mmssl_ext  # noqa: F401
    from mmengine.model import MMDistributedDataParallel
    from mmengine.optim import OptimWrapper
    from mmengine.registry import DefaultScope
    from mmpretrain.structures import DataSample

    from mmssl_ext.registry import MODELS
    DefaultScope.get_instance(f'invp-ddp-{rank}-{world_size}',
                              scope_name='mmssl_ext')
    torch.manual_seed(0)
    model = MODELS.build(copy.deepcopy(MODEL))
    if world_size > 1:
        model = MMDistributedDataParallel(module=model, device_ids=None,
                                          broadcast_buffers=False)
    params = model.parameters()
    optim = OptimWrapper(torch.optim.SGD(params, lr=0.1, momentum=0.9))
    ori = model.module if world_size > 1 else model
    per = B // world_size
    states, logs = [], []
    for x, idx in _global_batches():
        sl = slice(rank * per, (rank + 1) * per)
        data = dict(
            inputs=[x[sl]],
            data_samples=[DataSample(metainfo=dict(sample_idx=int(i)))
                          for i in idx[sl]])
        log = model.train_step(data, optim)
        logs.append({k: float(v.detach()) for k, v in log.items()})
        states.append((ori.memory.bank.clone(), ori.memory.neighbours.clone()))
    return states, logs


def test_ddp_state_identical_and_equal_to_one_process():
    r0, r1 = run_in_processes(_steps, world_size=2, timeout=300)
    single_states, single_logs = _steps(0, 1)
    batches = _global_batches()
    for step in range(STEPS):
        (b0, n0), (b1, n1) = r0[0][step], r1[0][step]
        bs, ns = single_states[step]
        # replicas identical, bit for bit
        assert torch.equal(b0, b1) and torch.equal(n0, n1)
        # equal to one process fed the concatenated batch
        torch.testing.assert_close(b0, bs, rtol=1e-5, atol=1e-6)
        assert torch.equal(n0, ns)
        # both ranks' rows were written (not only this rank's)
        idx = batches[step][1]
        if step == 0:
            assert (n0[idx] != 0).any(1).all()
    # losses: the mean of the per-rank batch means = the global mean
    for step in range(STEPS):
        for key in ('loss_ins', 'inv_term'):
            mean = (r0[1][step][key] + r1[1][step][key]) / 2
            assert abs(mean - single_logs[step][key]) < 1e-4, (step, key)
