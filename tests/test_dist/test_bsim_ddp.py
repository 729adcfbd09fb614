"""BSIM under 2 gloo processes: BSIMSimCLR's negatives come from both ranks
(checked by hand against embeddings recomputed without communication);
BSIMMoCo's queue, pointer and momentum encoder stay identical on both ranks
under DDP and receive both ranks' keys."""
import math

import torch
import torch.nn.functional as F

from mmssl_testing import run_in_processes

N, S = 3, 16  # per-rank batch, image side
BACKBONE = dict(type='ResNet_CIFAR', depth=18, stem_channels=4,
                base_channels=4, norm_cfg=dict(type='BN'))


def _global_views(world, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(world * N, 3, S, S, generator=g) for _ in range(2)]


def _ce(pos, negs, t):
    num = math.exp(pos / t)
    return -math.log(num / (num + sum(math.exp(n / t) for n in negs)))


def _simclr(rank, world):
    import mmssl_ext  # noqa: F401
    from mmengine.registry import DefaultScope
    from mmssl_ext.registry import MODELS
    DefaultScope.get_instance(f'bsim-ddp-{rank}', scope_name='mmssl_ext')
    torch.manual_seed(0)  # same weights and same mixing draws on each rank
    model = MODELS.build(
        dict(type='BSIMSimCLR', mixture=dict(mix_mode='mixup'),
             backbone=BACKBONE,
             neck=dict(type='NonLinearNeck', in_channels=32, hid_channels=16,
                       out_channels=8, norm_cfg=dict(type='BN1d')),
             head=dict(type='ContrastiveHead',
                       loss=dict(type='CrossEntropyLoss'), temperature=0.5)))
    xa, xb = _global_views(world)
    sl = slice(rank * N, (rank + 1) * N)
    out = model.loss([xa[sl], xb[sl]], None)
    lam = out['bsim_lambda'].item()
    with torch.no_grad():
        # every rank's embeddings, each computed from that rank's own batch
        # (BN statistics of a local batch), with no communication
        keys = []
        for r in range(world):
            s = slice(r * N, (r + 1) * N)
            z = model.neck(model.backbone(
                torch.stack([xa[s], xb[s]], 1).flatten(0, 1)))[0]
            keys.append(F.normalize(z, dim=1).view(N, 2, -1))
        keys = torch.cat(keys)  # (world * N, 2, D), global instance order
        mine = xa[sl]
        q = F.normalize(
            model.neck(model.backbone(lam * mine +
                                      (1 - lam) * mine.flip(0)))[0], dim=1)
    want = 0.
    for i in range(N):
        gi, gj = rank * N + i, rank * N + (N - 1 - i)
        negs = [float(q[i] @ keys[m, v]) for m in range(world * N)
                for v in (0, 1) if m not in (gi, gj)]
        want += lam * _ce(float(q[i] @ keys[gi, 1]), negs, 0.5) + (
            1 - lam) * _ce(float(q[i] @ keys[gj, 1]), negs, 0.5)
    return out['loss_bsim'].item(), want / N, len(negs)


def test_simclr_negatives_gathered_from_all_ranks():
    res = run_in_processes(_simclr, 2)
    for got, want, n_neg in res:
        assert n_neg == 2 * (2 * N) - 4
        assert abs(got - want) < 1e-4 * abs(want)


def _moco(rank, world, iters):
    import mmssl_ext  # noqa: F401
    from mmengine.registry import DefaultScope
    from torch.nn.parallel import DistributedDataParallel as DDP
    from mmssl_ext.registry import MODELS
    DefaultScope.get_instance(f'bsim-ddp-{rank}', scope_name='mmssl_ext')
    torch.manual_seed(0)
    model = MODELS.build(
        dict(type='BSIMMoCo', queue_len=4 * N * world, feat_dim=8,
             momentum=0.1, backbone=BACKBONE,
             neck=dict(type='MoCoV2Neck', in_channels=32, hid_channels=16,
                       out_channels=8),
             head=dict(type='ContrastiveHead',
                       loss=dict(type='CrossEntropyLoss'), temperature=0.2)))
    queue0 = model.queue.queue.t().clone()  # (D, L)
    # no buffer broadcast: the queue must stay identical on its own
    ddp = DDP(model, broadcast_buffers=False)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    torch.manual_seed(100 + rank)  # different mixing draws per rank
    ptrs = []
    for it in range(iters):
        xa, xb = _global_views(world, seed=it)
        sl = slice(rank * N, (rank + 1) * N)
        out = ddp([xa[sl], xb[sl]], None, mode='loss')
        opt.zero_grad()
        (out['loss_base'] + out['loss_bsim']).backward()
        opt.step()
        ptrs.append(int(model.queue.ptr))
    ema = torch.cat([p.detach().flatten()
                     for p in model.encoder_k.parameters()])
    return model.queue.queue.t().clone(), queue0, ptrs, ema


def test_moco_queue_identical_on_both_ranks():
    iters = 3
    (q0, init0, p0, e0), (q1, init1, p1, e1) = run_in_processes(
        _moco, 2, args=(iters, ))
    assert torch.equal(init0, init1)
    assert torch.equal(q0, q1)
    assert torch.equal(e0, e1)
    assert p0 == p1 == [2 * N * (it + 1) for it in range(iters)]
    # both ranks' keys were written: 3 iterations x 2 ranks x N columns
    changed = (q0 != init0).any(0)
    assert int(changed.sum()) == iters * 2 * N


GN_BACKBONE = dict(type='ResNet_CIFAR', depth=18, stem_channels=4,
                   base_channels=4, zero_init_residual=False,
                   norm_cfg=dict(type='GN', num_groups=2, requires_grad=True))


def _moco_split(rank, world, iters):
    """BSIMMoCo, global batch 2N split over ``world`` ranks, lr 0 (same
    encoders in both settings), GroupNorm (features independent of the
    split): returns the queue after every iteration and the losses."""
    import mmssl_ext  # noqa: F401
    from mmengine.registry import DefaultScope
    from torch.nn.parallel import DistributedDataParallel as DDP
    from mmssl_ext.registry import MODELS
    DefaultScope.get_instance(f'bsim-split-{rank}-{world}',
                              scope_name='mmssl_ext')
    torch.manual_seed(0)
    model = MODELS.build(
        dict(type='BSIMMoCo', queue_len=8 * N, feat_dim=8, momentum=0.1,
             backbone=GN_BACKBONE,
             neck=dict(type='MoCoV2Neck', in_channels=32, hid_channels=16,
                       out_channels=8),
             head=dict(type='ContrastiveHead',
                       loss=dict(type='CrossEntropyLoss'), temperature=0.2)))
    net = DDP(model, broadcast_buffers=False) if world > 1 else model
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    per = 2 * N // world
    queues, losses = [], []
    for it in range(iters):
        xa, xb = _global_views(2, seed=it)  # global batch of 2N
        sl = slice(rank * per, (rank + 1) * per)
        out = (net([xa[sl], xb[sl]], None, mode='loss') if world > 1 else
               net.loss([xa[sl], xb[sl]], None))
        opt.zero_grad()
        (out['loss_base'] + out['loss_bsim']).backward()
        opt.step()
        queues.append(model.queue.queue.clone())
        losses.append(float(out['loss_base'].detach()))
    return queues, losses, int(model.queue.ptr)


def test_moco_two_ranks_equal_one_process_with_double_batch():
    """2 ranks x N == 1 process x 2N for BSIMMoCo's global state (queue and
    pointer) and for MoCo's own loss. By design the BSIM term is not
    compared: the mixing partner is drawn inside each rank's batch (reversed
    local order), as for any per-GPU augmentation, so 2 x N and 1 x 2N pair
    different instances."""
    iters = 3
    r0, r1 = run_in_processes(_moco_split, 2, args=(iters, ), timeout=300)
    single = _moco_split(0, 1, iters)
    assert r0[2] == r1[2] == single[2] == (iters * 2 * N) % (8 * N)
    for it in range(iters):
        assert torch.equal(r0[0][it], r1[0][it])
        torch.testing.assert_close(r0[0][it], single[0][it], rtol=1e-5,
                                   atol=1e-6)
        mean = (r0[1][it] + r1[1][it]) / 2
        assert abs(mean - single[1][it]) < 1e-5, it
