"""The method classes are compositions of a framework and branches, pinned
by golden numbers.

For every case below, the registered class (``InterCLRMoCo``, ``NPIDCLD``,
``MoCoCLD``, ``BSIM*``) and the same model written as
``ComposedSSL(base=..., branches=[...])`` get the same weights, state,
inputs and random state and train for three SGD steps:

* the two are equal bit for bit (every loss of every step, the whole state
  afterwards: weights, momentum encoders, queues, memories, pseudo-labels,
  counters);
* the losses and a fingerprint of the final state equal the golden numbers
  of ``golden.json``, computed by this file's ``--write`` from the code of
  commit 5728e60 (the classes before issue 27 removed their compatibility
  code; they were themselves checked there against frozen copies of the
  classes written before the composition).

The golden comparison uses tolerances (rel 1e-4): the numbers come from
float32 CPU kernels whose last bits may differ between CPUs. Integer state
(labels, pointers, counters) must match exactly. ``BSIMMoCo`` was built on
MMPretrain's ``MoCo`` at that commit and is built on ``RingMoCo`` now (one
MoCo): its golden numbers were computed with the same initial queue (the
transpose of the one ``_init_state`` draws) and its queue entries named as
``RingMoCo``'s (``queue.queue``, ``queue.ptr``); the ring re-normalises the
keys it stores, so the two agree to rounding, well within the tolerance.
"""
import copy
import hashlib
import json
import os.path as osp
import sys

import pytest
import torch
import torch.nn.functional as F
from mmengine.logging import MessageHub
from mmpretrain.structures import DataSample

from mmssl_ext.registry import MODELS

if __package__:
    from .tiny import BB, CE, CLD_NECK, FRAMEWORKS, MOCO_NECK, N, \
        fill_memories
else:  # python tests/.../test_equivalence.py --write
    sys.path.insert(0, osp.dirname(__file__))
    from tiny import BB, CE, CLD_NECK, FRAMEWORKS, MOCO_NECK, N, \
        fill_memories

STEPS = 3
GOLDEN = osp.join(osp.dirname(__file__), 'golden.json')


def _batches(n_views, b=4, size=16, labels=False):
    g = torch.Generator().manual_seed(7)
    out = []
    for step in range(STEPS):
        views = [torch.randn(b, 3, size, size, generator=g)
                 for _ in range(n_views)]
        idx = torch.randperm(N, generator=g)[:b].tolist()
        samples = []
        for i in idx:
            s = DataSample(metainfo=dict(sample_idx=i))
            if labels:
                s.set_gt_label(i % 3)
            samples.append(s)
        out.append((views, samples))
    return out


def _train(model, batches):
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    logs = []
    for step, (views, samples) in enumerate(batches):
        torch.manual_seed(100 + step)  # shuffle-BN, mixing draws
        losses = model.loss([v.clone() for v in views], samples)
        loss, _ = model.parse_losses(losses)
        opt.zero_grad()
        loss.backward()
        opt.step()
        logs.append({k: v.detach().clone() for k, v in losses.items()})
    return logs


# ------------------------------------------------------------------ cases
INTERCLR = dict(
    backbone=BB, neck=MOCO_NECK,
    head=dict(type='MarginContrastiveHead', loss=CE, temperature=0.2),
    memory=dict(type='ClusterMemory', length=N, num_clusters=3,
                momentum=1.0, min_cluster=2, init='data', feat_dim=8),
    queue_len=16, feat_dim=8, momentum=0.01, neg_num=5,
    semihard_neg_pool_num=10, semieasy_neg_pool_num=10, sampling_seed=3)


def _interclr(**kw):
    cfg = dict(copy.deepcopy(INTERCLR), **kw)
    branch = dict(
        type='InterImageBranch', memory=copy.deepcopy(cfg['memory']),
        loss_weight=0.25,
        neck=None if cfg.get('share_neck', True) else copy.deepcopy(
            cfg['neck']))
    for k in ('neg_num', 'semihard_neg_pool_num', 'semieasy_neg_pool_num',
              'sampling_seed', 'neg_sampling'):
        if k in cfg:
            branch[k] = cfg[k]
    base = {k: v for k, v in cfg.items()
            if k in ('backbone', 'neck', 'head', 'queue_len', 'feat_dim',
                     'momentum')}
    composed = dict(type='ComposedSSL', base=dict(base, type='RingMoCo'),
                    branches=[branch], base_loss_weight=0.75,
                    base_loss_key='loss_intra')
    return dict(cfg, type='InterCLRMoCo'), composed, 2, False


def _npid_cld():
    cfg = dict(type='NPIDCLD', backbone=BB, neck=CLD_NECK,
               memory=dict(type='FeatureMemory', length=N, feat_dim=8),
               group_head=dict(type='GroupBranch', num_groups=2,
                               temperature=0.3, loss_weight=0.5),
               temperature=0.1)
    composed = dict(
        type='ComposedSSL',
        base=dict(type='NPID', backbone=BB, neck=CLD_NECK,
                  memory=cfg['memory'], neg_num=None,
                  head=dict(type='ContrastiveHead', loss=CE,
                            temperature=0.1)),
        branches=[dict(type='GroupBranch', num_groups=2, temperature=0.3,
                       loss_weight=0.5)],
        base_loss_key='loss_inst')
    return cfg, composed, 2, True


def _moco_cld(key_view):
    head = dict(type='ContrastiveHead', loss=CE, temperature=0.2)
    cfg = dict(type='MoCoCLD', backbone=BB, neck=CLD_NECK, head=head,
               group_head=dict(type='GroupBranch', num_groups=2,
                               temperature=0.4, loss_weight=0.25),
               queue_len=10, feat_dim=8, momentum=0.01, key_view=key_view)
    composed = dict(
        type='ComposedSSL',
        base=dict(type='RingMoCo', backbone=BB, neck=CLD_NECK, head=head,
                  queue_len=10, feat_dim=8, momentum=0.01,
                  key_view=key_view, num_views=3),
        branches=[dict(type='GroupBranch', num_groups=2, temperature=0.4,
                       loss_weight=0.25)],
        base_loss_key='loss_inst')
    return cfg, composed, 3, False


BSIM_MIXTURES = dict(
    default=dict(mix_mode='mixup'),
    knobs=dict(mix_mode='both', mixed_view='both', pairing='random',
               symmetric_mix=True, beta_weight=0.5))


def _bsim(name, mixture):
    mixture = BSIM_MIXTURES[mixture]
    base = dict(FRAMEWORKS[name], backbone=BB)
    if name == 'MoCo':  # BSIMMoCo is built on RingMoCo (one MoCo)
        base['type'] = 'RingMoCo'
    branch = dict(mixture, type='MixtureBranch')
    branch['loss_weight'] = branch.pop('beta_weight', 1.0)
    composed = dict(type='ComposedSSL',
                    base=dict(dict(type=name), **base),
                    branches=[branch])
    return (dict(copy.deepcopy(FRAMEWORKS[name]), backbone=BB,
                 type=f'BSIM{name}', mixture=copy.deepcopy(mixture)),
            composed, 2, False)


CASES = {
    'interclr-shared-neck': lambda: _interclr(),
    'interclr-own-neck': lambda: _interclr(share_neck=False),
    'interclr-hard': lambda: _interclr(neg_sampling='hard'),
    'npid-cld': _npid_cld,
    'moco-cld-key1': lambda: _moco_cld(1),
    'moco-cld-key2': lambda: _moco_cld(2),
    **{f'bsim-{name.lower()}-{m}': (lambda name=name, m=m: _bsim(name, m))
       for name in ('BYOL', 'MoCo', 'SimCLR', 'SimSiam')
       for m in BSIM_MIXTURES},
}


def _init_state(model):
    """The deterministic initial state every case starts from (besides the
    weights, drawn after ``manual_seed(0)``): memories filled as
    ``OfflineClusterHook`` would, a MoCo queue drawn from a fixed
    generator."""
    fill_memories(model, seed=1)
    queue = getattr(model, 'queue', None)
    if queue is not None:
        q = queue.queue
        g = torch.Generator().manual_seed(5)
        q.copy_(F.normalize(torch.randn(q.shape, generator=g), dim=1))


def fingerprint(state):
    """The state in a few numbers: entries grouped by their first three
    name parts (``backbone.layer1.0``, ``encoder_k.module.0``,
    ``branches.0.memory`` ...); per group, float tensors -> ``[sum, sum
    |x|]`` (float64), integer and bool tensors -> ``[sum, sha1 of the
    values]``."""
    groups = {}
    for key, t in state.items():
        t = t.detach().cpu()
        kind = 'float' if t.is_floating_point() else 'int'
        name = '.'.join(key.split('.')[:3]) + f' ({kind})'
        groups.setdefault(name, []).append(
            t.double() if kind == 'float' else t.long())
    out = {}
    for name, ts in groups.items():
        flat = torch.cat([t.flatten() for t in ts])
        if flat.is_floating_point():
            out[name] = [float(flat.sum()), float(flat.abs().sum())]
        else:
            out[name] = [int(flat.sum()), hashlib.sha1(
                flat.contiguous().numpy().tobytes()).hexdigest()]
    return out


def run_case(name):
    MessageHub.get_current_instance().update_info('max_iters', 10)
    cfg, composed, n_views, labels = CASES[name]()
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    _init_state(model)
    state0 = {k: v.clone() for k, v in model.state_dict().items()}
    batches = _batches(n_views, labels=labels)
    return model, state0, batches, composed, _train(model, batches)


@pytest.mark.parametrize('name', sorted(CASES))
def test_method_class_is_its_composition_and_golden(name):
    model, state0, batches, composed_cfg, logs = run_case(name)
    # 1) the registered class == ComposedSSL, bit for bit
    composed = MODELS.build(composed_cfg)
    missing, unexpected = composed.load_state_dict(state0, strict=False)
    assert not missing and not unexpected, (missing, unexpected)
    logs_c = _train(composed, batches)
    for step, (want, got) in enumerate(zip(logs, logs_c)):
        assert list(got) == list(want), step
        for key in want:
            assert torch.equal(got[key], want[key]), (step, key)
    final, final_c = model.state_dict(), composed.state_dict()
    assert set(final) == set(final_c)
    for key in final:
        assert torch.equal(final[key], final_c[key]), key
    # 2) the golden numbers
    with open(GOLDEN) as f:
        golden = json.load(f)[name]
    got_logs = [{k: float(v) for k, v in step.items()} for step in logs]
    assert [sorted(s) for s in got_logs] == [sorted(s)
                                             for s in golden['losses']]
    for step, (want, got) in enumerate(zip(golden['losses'], got_logs)):
        for key in want:
            assert got[key] == pytest.approx(want[key], rel=1e-4,
                                             abs=1e-5), (step, key)
    got_fp = fingerprint(final)
    assert set(got_fp) == set(golden['state'])
    for key, want in golden['state'].items():
        if isinstance(want[1], str):
            assert got_fp[key] == want, key
        else:
            assert got_fp[key] == pytest.approx(want, rel=1e-4,
                                                abs=1e-4), key


if __name__ == '__main__' and '--write' in sys.argv:
    import mmssl_ext  # noqa: F401
    from mmengine.registry import DefaultScope
    DefaultScope.get_instance('golden', scope_name='mmssl_ext')
    out = {}
    for case in sorted(CASES):
        m, _, _, _, case_logs = run_case(case)
        out[case] = dict(
            losses=[{k: float(v) for k, v in s.items()} for s in case_logs],
            state=fingerprint(m.state_dict()))
        print(case, out[case]['losses'][-1])
    with open(GOLDEN, 'w') as f:  # one line per case
        f.write('{\n' + ',\n'.join(
            f'{json.dumps(k)}: {json.dumps(out[k], sort_keys=True)}'
            for k in sorted(out)) + '\n}\n')
