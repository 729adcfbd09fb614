"""BSIM variants of SimCLR, MoCo, BYOL and SimSiam: loss keys, backward,
the base loss untouched, the BSIM term re-derived by hand from the model's
own embeddings, MoCo's queue, knobs and bad input."""
import copy
import math

import pytest
import torch
import torch.nn.functional as F
from mmengine.logging import MessageHub

from mmssl_ext.registry import MODELS

B, S = 4, 16  # batch, image side
BACKBONE = dict(
    type='ResNet_CIFAR',
    depth=18,
    stem_channels=4,
    base_channels=4,
    norm_cfg=dict(type='BN'),
    zero_init_residual=False)
OUT = 32  # last-stage channels of the tiny backbone
BN = dict(type='BN1d')

CFGS = {
    'SimCLR':
    dict(
        backbone=BACKBONE,
        neck=dict(type='NonLinearNeck', in_channels=OUT, hid_channels=16,
                  out_channels=8, num_layers=2, norm_cfg=BN,
                  with_avg_pool=True),
        head=dict(type='ContrastiveHead', loss=dict(type='CrossEntropyLoss'),
                  temperature=0.1)),
    'MoCo':
    dict(
        queue_len=16,
        feat_dim=8,
        momentum=0.01,
        backbone=BACKBONE,
        neck=dict(type='MoCoV2Neck', in_channels=OUT, hid_channels=16,
                  out_channels=8, with_avg_pool=True),
        head=dict(type='ContrastiveHead', loss=dict(type='CrossEntropyLoss'),
                  temperature=0.2)),
    'BYOL':
    dict(
        base_momentum=0.01,
        backbone=BACKBONE,
        neck=dict(type='NonLinearNeck', in_channels=OUT, hid_channels=16,
                  out_channels=8, num_layers=2, with_bias=True,
                  with_last_bn=False, norm_cfg=BN, with_avg_pool=True),
        head=dict(
            type='LatentPredictHead',
            predictor=dict(type='NonLinearNeck', in_channels=8,
                           hid_channels=16, out_channels=8, num_layers=2,
                           with_bias=True, with_last_bn=False, norm_cfg=BN,
                           with_avg_pool=False),
            loss=dict(type='CosineSimilarityLoss'))),
    'SimSiam':
    dict(
        backbone=BACKBONE,
        neck=dict(type='NonLinearNeck', in_channels=OUT, hid_channels=16,
                  out_channels=8, num_layers=3, with_last_bn_affine=False,
                  norm_cfg=BN, with_avg_pool=True),
        head=dict(
            type='LatentPredictHead',
            loss=dict(type='CosineSimilarityLoss'),
            predictor=dict(type='NonLinearNeck', in_channels=8,
                           hid_channels=4, out_channels=8, norm_cfg=BN,
                           with_avg_pool=False, with_last_bn=False,
                           with_last_bias=True))),
}
ALGOS = list(CFGS)


@pytest.fixture(autouse=True)
def _message_hub():
    # CosineEMA (BYOL) reads max_iters from the current MessageHub
    hub = MessageHub.get_instance(f'test-bsim-{id(object())}')
    hub.update_info('max_iters', 10)
    yield


def build(algo, bsim=True, **mixture):
    cfg = copy.deepcopy(CFGS[algo])
    # BSIMMoCo is built on the package's ring-buffer MoCo
    base = 'RingMoCo' if algo == 'MoCo' else algo
    cfg['type'] = f'BSIM{algo}' if bsim else base
    if bsim:
        cfg['mixture'] = mixture
    return MODELS.build(cfg)


def views(b=B, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(b, 3, S, S, generator=g) for _ in range(2)]


@pytest.mark.parametrize('algo', ALGOS)
def test_loss_keys_finite_and_backward(algo):
    torch.manual_seed(0)
    model = build(algo)
    out = model.loss(views(), None)
    assert set(out) == {'loss_base', 'loss_bsim', 'bsim_lambda',
                        'bsim_mixup'}
    for v in out.values():
        assert v.dim() == 0 and torch.isfinite(v)
    assert 0 <= out['bsim_lambda'] <= 1
    loss, log_vars = model.parse_losses(out)
    assert torch.allclose(loss, out['loss_base'] + out['loss_bsim'])
    # the BSIM term alone reaches the backbone
    out['loss_bsim'].backward()
    grad = model.backbone.conv1.weight.grad
    assert grad is not None and grad.abs().sum() > 0
    assert all(not p.requires_grad or p.grad is None or torch.isfinite(
        p.grad).all() for p in model.parameters())


@pytest.mark.parametrize('algo', ALGOS)
def test_base_loss_is_the_framework_loss(algo):
    torch.manual_seed(0)
    plain = build(algo, bsim=False)
    model = build(algo)
    model.load_state_dict(plain.state_dict())
    x = views()
    torch.manual_seed(1)
    want = plain.loss(x, None)['loss']
    torch.manual_seed(1)
    got = model.loss(x, None)['loss_base']
    assert torch.equal(got, want)


def _ce(pos, negs, t):
    num = math.exp(pos / t)
    return -math.log(num / (num + sum(math.exp(n / t) for n in negs)))


def _rev(i, n):
    return n - 1 - i


def test_moco_term_by_hand_and_queue():
    torch.manual_seed(0)
    model = build('MoCo', mix_mode='mixup')
    xa, xb = views()
    queue0 = model.queue.queue.t().clone()  # (D, L)
    out = model.loss([xa, xb], None)
    # queue: this batch's keys written at 0..B-1, pointer moved, rest kept
    queue = model.queue.queue.t()
    assert int(model.queue.ptr) == B
    assert torch.equal(queue[:, B:], queue0[:, B:])
    assert not torch.equal(queue[:, :B], queue0[:, :B])
    keys = queue[:, :B].t()  # momentum keys of view b
    lam = out['bsim_lambda'].item()
    with torch.no_grad():
        xm = lam * xa + (1 - lam) * xa.flip(0)
        q = F.normalize(model.neck(model.backbone(xm))[0], dim=1)
    t = model.head.temperature
    want = 0.
    for i in range(B):
        negs = (q[i] @ queue0).tolist()  # the queue before this batch
        j = _rev(i, B)
        want += lam * _ce(float(q[i] @ keys[i]), negs, t) + (1 - lam) * _ce(
            float(q[i] @ keys[j]), negs, t)
    assert out['loss_bsim'].item() == pytest.approx(want / B, rel=1e-4)
    model.loss(views(seed=1), None)
    assert int(model.queue.ptr) == 2 * B


def test_simclr_term_by_hand_excludes_both_sources():
    torch.manual_seed(0)
    n = 5  # odd: the middle sample is its own partner
    model = build('SimCLR', mix_mode='mixup')
    xa, xb = views(n)
    out = model.loss([xa, xb], None)
    lam = out['bsim_lambda'].item()
    with torch.no_grad():
        z = model.neck(model.backbone(torch.stack([xa, xb], 1).flatten(
            0, 1)))[0]
        keys = F.normalize(z, dim=1).view(n, 2, -1)
        xm = lam * xa + (1 - lam) * xa.flip(0)
        q = F.normalize(model.neck(model.backbone(xm))[0], dim=1)
    t = model.head.temperature
    want = 0.
    for i in range(n):
        j = _rev(i, n)
        negs = [
            float(q[i] @ keys[m, v]) for m in range(n) for v in (0, 1)
            if m not in (i, j)
        ]
        assert len(negs) == (2 * n - 2 if i == j else 2 * n - 4)
        want += lam * _ce(float(q[i] @ keys[i, 1]), negs, t) + (
            1 - lam) * _ce(float(q[i] @ keys[j, 1]), negs, t)
    assert out['loss_bsim'].item() == pytest.approx(want / n, rel=1e-4)


@pytest.mark.parametrize('algo', ['BYOL', 'SimSiam'])
def test_latent_term_by_hand(algo):
    torch.manual_seed(0)
    model = build(algo, mix_mode='mixup')
    xa, xb = views()
    out = model.loss([xa, xb], None)
    lam = out['bsim_lambda'].item()
    with torch.no_grad():
        if algo == 'BYOL':
            target = model.target_net(xb)[0]  # updated once, inside loss
        else:
            target = model.neck(model.backbone(xb))[0]
        xm = lam * xa + (1 - lam) * xa.flip(0)
        pred = model.head.predictor([model.neck(model.backbone(xm))[0]])[0]
    want = 0.
    for i in range(B):
        j = _rev(i, B)
        cos_i = float(F.cosine_similarity(pred[i], target[i], dim=0))
        cos_j = float(F.cosine_similarity(pred[i], target[j], dim=0))
        # 2 * (-cos): D = 2 - 2 cos up to the constant 2
        want += lam * (-2 * cos_i) + (1 - lam) * (-2 * cos_j)
    assert out['loss_bsim'].item() == pytest.approx(want / B, rel=1e-4)


@pytest.mark.parametrize('algo', ['MoCo', 'SimCLR', 'BYOL'])
def test_symmetric_term_equals_main_term_under_reverse_pairing(algo):
    torch.manual_seed(0)
    model = build(algo)
    sym = copy.deepcopy(model)
    sym.branches[0].symmetric_mix = True
    x = views()
    torch.manual_seed(5)
    a = model.loss(x, None)['loss_bsim']
    torch.manual_seed(5)
    b = sym.loss(x, None)['loss_bsim']
    assert b.item() == pytest.approx(a.item(), rel=1e-5)


@pytest.mark.parametrize('algo', ALGOS)
@pytest.mark.parametrize('knobs', [
    dict(mixed_view='both'),
    dict(pairing='random', symmetric_mix=True),
    dict(mix_mode='cutmix', alpha=0.5, beta_weight=0.5),
])
def test_knobs_run(algo, knobs):
    torch.manual_seed(0)
    model = build(algo, **knobs)
    out = model.loss(views(), None)
    assert torch.isfinite(out['loss_bsim'])
    (out['loss_base'] + out['loss_bsim']).backward()
    if algo == 'MoCo':
        assert int(model.queue.ptr) == B  # enqueued once per iteration


def test_random_pairing_symmetric_forwards_the_mirror():
    torch.manual_seed(0)
    model = build('SimSiam', pairing='random', symmetric_mix=True)
    calls = []
    h = model.backbone.register_forward_hook(lambda *a: calls.append(1))
    model.loss(views(), None)
    h.remove()
    assert len(calls) == 2 + 2  # two views, the mixture, its mirror


@pytest.mark.parametrize('algo', ALGOS)
def test_one_extra_forward(algo):
    torch.manual_seed(0)
    calls = {}
    for bsim in (False, True):
        model = build(algo, bsim=bsim)
        n = []
        h = model.backbone.register_forward_hook(
            lambda m, a, o: n.append(a[0].size(0)))
        model.loss(views(), None)
        h.remove()
        calls[bsim] = sum(n)
    assert calls[True] - calls[False] == B  # images through the backbone


def test_beta_weight_zero():
    torch.manual_seed(0)
    out = build('MoCo', beta_weight=0).loss(views(), None)
    assert out['loss_bsim'].item() == 0


def test_mode_diagnostic():
    torch.manual_seed(0)
    assert build('SimSiam', mix_mode='mixup').loss(
        views(), None)['bsim_mixup'].item() == 1.
    assert build('SimSiam', mix_mode='cutmix').loss(
        views(), None)['bsim_mixup'].item() == 0.


@pytest.mark.parametrize('kw, key', [
    (dict(alpha=0), 'alpha'),
    (dict(alpha=-1.0), 'alpha'),
    (dict(mix_mode='saliencymix'), 'mix_mode'),
    (dict(p_mixup=1.5), 'p_mixup'),
    (dict(pairing='shift'), 'pairing'),
    (dict(mixed_view='b'), 'mixed_view'),
    (dict(beta_weight=-0.1), 'beta_weight'),
    (dict(symmetric_mix='yes'), 'symmetric_mix'),
])
def test_bad_config_names_the_key(kw, key):
    with pytest.raises((ValueError, TypeError), match=key):
        build('MoCo', **kw)


def test_flat_mixing_settings_point_to_the_mixture_dict():
    with pytest.raises(ValueError, match=r'model.mixture=dict'):
        MODELS.build(dict(copy.deepcopy(CFGS['MoCo']), type='BSIMMoCo',
                          mix_mode='mixup'))
