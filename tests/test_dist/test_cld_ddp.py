"""CLD under 2-process gloo DDP (CPU).

* The NPID memory bank and the MoCo queue / momentum encoder are identical
  on both ranks after each iteration and equal to a 1-process run fed the
  concatenated global batch (the toy encoder has no BatchNorm, so features
  do not depend on how the batch is split).
* Group branch, ``gather=False`` (default, the authors' behaviour): each
  rank groups **its own** batch, so the group loss is that of a 1-process
  run on the rank's half -- it is expected to differ from a 1-process run on
  the global batch.
* ``gather=True``: the grouping of the all-gathered batch; the mean of the
  ranks' losses and the rank-averaged gradients equal the 1-process loss and
  gradient on the global batch.
"""
import torch
import torch.nn as nn
from mmpretrain.structures import DataSample

from mmssl_testing.dist import run_in_processes

B = 4  # per rank


class _Enc(nn.Module):

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 1)

    def forward(self, x):
        return (torch.relu(self.conv(x)), )


def _build(kind, gather):
    import mmssl_ext  # noqa: F401
    from mmengine.registry import DefaultScope
    from mmssl_ext.registry import MODELS
    DefaultScope.get_instance(f'cld-ddp-{kind}-{gather}-{id(object())}',
                              scope_name='mmssl_ext')
    torch.manual_seed(0)
    neck = dict(type='CLDNeck', in_channels=6, out_channels=4)
    group = dict(type='GroupBranch', num_groups=3, loss_weight=1.,
                 gather=gather)
    if kind == 'npid':
        cfg = dict(type='NPIDCLD', backbone=_Enc(), neck=neck,
                   memory=dict(type='FeatureMemory', length=16, feat_dim=4),
                   group_head=group)
    else:
        cfg = dict(type='MoCoCLD', backbone=_Enc(), neck=neck,
                   head=dict(type='ContrastiveHead',
                             loss=dict(type='CrossEntropyLoss'),
                             temperature=0.1),
                   group_head=group, queue_len=12, feat_dim=4,
                   momentum=0.01)
    return MODELS.build(cfg)


def _global_batch(step, kind):
    g = torch.Generator().manual_seed(100 + step)
    n_views = 2 if kind == 'npid' else 3
    views = [torch.rand(2 * B, 3, 4, 4, generator=g) for _ in range(n_views)]
    idx = torch.randperm(16, generator=g)[:2 * B]
    return views, idx


def _step(model, views, idx):
    samples = [DataSample(metainfo=dict(sample_idx=int(i)))
               for i in idx]
    model.zero_grad()
    losses = model.loss(views, samples)
    total = sum(v for k, v in losses.items() if k.startswith('loss'))
    total.backward()
    return {k: float(v.detach()) for k, v in losses.items()}


def _grads(model):
    return {
        n: p.grad.clone()
        for n, p in model.named_parameters() if p.grad is not None
    }


def _run(rank, world_size, kind, gather, steps):
    from mmengine import dist
    model = _build(kind, gather)
    out = []
    for s in range(steps):
        views, idx = _global_batch(s, kind)
        if world_size > 1:
            sl = slice(rank * B, (rank + 1) * B)
            views, idx = [v[sl] for v in views], idx[sl]
        losses = _step(model, views, idx)
        grads = _grads(model)
        for g in grads.values():  # what DDP does: average over ranks
            dist.all_reduce(g, op='mean')
        out.append(dict(losses=losses, grads=grads))
    return dict(state={k: v.clone() for k, v in model.state_dict().items()},
                steps=out)


def _run_half(kind, step, rank):
    """1-process run of the group loss on one rank's half of the batch."""
    model = _build(kind, False)
    views, idx = _global_batch(step, kind)
    sl = slice(rank * B, (rank + 1) * B)
    return _step(model, [v[sl] for v in views], idx[sl])


def _check_state_equal(a, b):
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6,
                                   msg=lambda m: f'{k}: {m}')


def test_npid_cld_bank_identical_and_group_modes():
    for gather in (False, True):
        ranks = run_in_processes(_run, 2, args=('npid', gather, 2))
        single = _run(0, 1, 'npid', gather, 2)
        # replicated state identical on both ranks, equal to the 1-proc run
        for k, v in ranks[0]['state'].items():
            assert torch.equal(v, ranks[1]['state'][k]), k
        torch.testing.assert_close(ranks[0]['state']['memory.bank'],
                                   single['state']['memory.bank'])
        s0, s1 = ranks[0]['steps'][0], ranks[1]['steps'][0]
        inst = (s0['losses']['loss_inst'] + s1['losses']['loss_inst']) / 2
        assert abs(inst - single['steps'][0]['losses']['loss_inst']) < 1e-5
        grp = (s0['losses']['loss_group'] + s1['losses']['loss_group']) / 2
        if gather:
            # global grouping: same loss and gradient as one process
            assert abs(grp - single['steps'][0]['losses']['loss_group']) \
                < 1e-5
            for n, g in single['steps'][0]['grads'].items():
                torch.testing.assert_close(s0['grads'][n], g, rtol=1e-4,
                                           atol=1e-6)
        else:
            # per-GPU grouping (authors): each rank's group loss is that of
            # its own half of the batch
            for r, s in enumerate((s0, s1)):
                half = _run_half('npid', 0, r)
                assert abs(s['losses']['loss_group'] -
                           half['loss_group']) < 1e-5


def test_moco_cld_queue_and_ema_identical():
    ranks = run_in_processes(_run, 2, args=('moco', False, 2))
    single = _run(0, 1, 'moco', False, 2)
    for k, v in ranks[0]['state'].items():
        assert torch.equal(v, ranks[1]['state'][k]), k
    # keys gathered in rank order = the global batch order
    for k in ('queue.queue', 'queue.ptr'):
        torch.testing.assert_close(ranks[0]['state'][k], single['state'][k])
    assert int(ranks[0]['state']['queue.ptr']) == (2 * 2 * B) % 12
    assert int(ranks[0]['state']['encoder_k.steps']) == 2
    s0, s1 = ranks[0]['steps'][0], ranks[1]['steps'][0]
    inst = (s0['losses']['loss_inst'] + s1['losses']['loss_inst']) / 2
    assert abs(inst - single['steps'][0]['losses']['loss_inst']) < 1e-5
