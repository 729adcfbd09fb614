"""InvP loss terms, propagation, positive selection and ramp-up, each
checked against numbers worked out by hand (or by an
independent dense re-implementation of the authors' forward pass)."""
import math

import pytest
import torch

from mmssl_ext.models.invp.invp_loss import (InvPLoss, background_outside,
                                               invp_instance_loss,
                                               invp_ramp_up, propagate_bfs,
                                               propagate_concat,
                                               select_positives)

e = math.exp
EPS = 1e-7

# ---------------------------------------------------------------------------
# Hand-made scenario (t = 1). The anchor v = (1, 0) is sample 0; bank rows are
# unit vectors whose dot products with v are COS, so the logits are COS.
#   top-4 background of the anchor: 0 (1.0), 5 (.75), 1 (.5), 2 (0)
#   neighbour table (k=2): 0 -> [5, 3], 3 -> [4, 5], 5 -> [1, 0]
#   concat, 2 hops: [5, 3] + neigh[5] + neigh[3] = [5, 3, 1, 0, 4, 5]
#     (5 twice, the anchor 0 included); logits [.75, -.5, .5, 1, -1, .75]
#   BFS, 2 hops: {1, 3, 4, 5}
# ---------------------------------------------------------------------------
COS = [1., .5, 0., -.5, -1., .75]
BANK = torch.tensor([[c, math.sqrt(max(0., 1 - c * c))] for c in COS])
V = torch.tensor([[1., 0.]])
NEIGH = torch.tensor([[5, 3], [0, 0], [0, 0], [4, 5], [0, 0], [1, 0]])
IDX = torch.tensor([0])


def _approx(x):
    # float32 losses vs float64 hand values
    return pytest.approx(x, rel=1e-5, abs=1e-6)


def _loss(**kw):
    cfg = dict(temperature=1.0, n_background=4, diffusion_layer=2, n_pos=2,
               knn_backend='torch')
    cfg.update(kw)
    return InvPLoss(**cfg)(V, IDX, BANK, NEIGH)


# ------------------------------- ramp-up ----------------------------------
def test_ramp_up_binary():
    # authors: int(i_epoch > 30) with 1-based i_epoch = mmengine epoch + 1
    assert [invp_ramp_up(ep, 'binary', 30) for ep in (0, 29, 30, 31, 799)] \
        == [0., 0., 1., 1., 1.]
    # digits scaling: ramp_epochs=1 -> off in epoch 0 only
    assert invp_ramp_up(0, 'binary', 1) == 0.
    assert invp_ramp_up(1, 'binary', 1) == 1.


def test_ramp_up_gaussian_and_none():
    # exp(-5 (1 - i/30)^2), i = epoch + 1, clipped at 1 from i = 30 on
    assert invp_ramp_up(14, 'gaussian', 30) == pytest.approx(e(-1.25))
    assert invp_ramp_up(0, 'gaussian', 30) == pytest.approx(
        e(-5 * (29 / 30)**2))
    assert invp_ramp_up(29, 'gaussian', 30) == pytest.approx(1.0)
    assert invp_ramp_up(100, 'gaussian', 30) == pytest.approx(1.0)
    assert invp_ramp_up(0, 'none') == 1.0
    # an unknown mode is rejected where it enters, InvP(ramp_up=...)
    # (test_invp.py::test_bad_config_names_the_key)


# ----------------------------- propagation --------------------------------
def test_propagate_concat_by_hand():
    assert propagate_concat(NEIGH, IDX, 1).tolist() == [[5, 3]]
    assert propagate_concat(NEIGH, IDX, 2).tolist() == [[5, 3, 1, 0, 4, 5]]
    # hop 3: neigh[1], neigh[0], neigh[4], neigh[5]
    assert propagate_concat(NEIGH, IDX, 3).tolist() == [
        [5, 3, 1, 0, 4, 5, 0, 0, 5, 3, 0, 0, 1, 0]
    ]
    # two anchors at once
    assert propagate_concat(NEIGH, torch.tensor([3, 5]), 2).tolist() == [
        [4, 5, 0, 0, 1, 0], [1, 0, 0, 0, 5, 3]
    ]
    # diffusion_layer < 1 is rejected by InvPLoss (bad-argument test below)


def test_propagate_sizes_84_and_340():
    neigh = torch.randint(0, 50, (50, 4))
    idx = torch.arange(3)
    assert propagate_concat(neigh, idx, 3).shape == (3, 4 + 16 + 64)
    assert propagate_concat(neigh, idx, 4).shape == (3, 340)


def test_propagate_bfs_by_hand():
    cand, valid = propagate_bfs(NEIGH, IDX, 2)
    assert cand[valid].tolist() == [1, 3, 4, 5]  # unique, anchor dropped
    assert valid.sum().item() == 4 and cand.shape == (1, 6)
    assert (cand[~valid] == 0).all()  # padding holds the anchor
    # hop 3 reaches nothing new ({0, 5, 3, 1} are known or the anchor)
    cand3, valid3 = propagate_bfs(NEIGH, IDX, 3)
    assert cand3[valid3].tolist() == [1, 3, 4, 5]
    # anchor 3: [4, 5] then neigh[4]=[0,0], neigh[5]=[1,0] -> {0, 1, 4, 5}
    cand, valid = propagate_bfs(NEIGH, torch.tensor([3]), 2)
    assert cand[valid].tolist() == [0, 1, 4, 5]


# -------------------------- positive selection ----------------------------
CAND_LOGITS = torch.tensor([[.75, -.5, .5, 1., -1., .75]])  # concat order


def test_hard_positives_are_least_similar():
    pos, mask, sel = select_positives(CAND_LOGITS, 2, hard=True)
    assert sorted(pos.flatten().tolist()) == [-1., -.5]
    assert sorted(sel.flatten().tolist()) == [1, 4]
    assert mask.all()


def test_easy_positives_count_duplicates_in_concat_mode():
    pos, _, _ = select_positives(CAND_LOGITS, 3, hard=False)
    # sample 5 appears twice in the concatenated list: counted twice
    assert sorted(pos.flatten().tolist()) == [.75, .75, 1.]


def test_bfs_selection_ignores_padding_and_duplicates():
    cand, valid = propagate_bfs(NEIGH, IDX, 2)  # [1, 3, 4, 5, pad, pad]
    logits = torch.tensor([COS])[:, cand[0]]
    pos, mask, _ = select_positives(logits, 3, hard=False, valid=valid)
    assert sorted(pos[mask].tolist()) == [-.5, .5, .75]
    pos, mask, _ = select_positives(logits, 2, hard=True, valid=valid)
    assert sorted(pos[mask].tolist()) == [-1., -.5]
    # more positives asked than reachable: only the 4 real ones
    pos, mask, _ = select_positives(logits, 6, hard=True, valid=valid)
    assert sorted(pos[mask].tolist()) == [-1., -.5, .5, .75]


def test_n_pos_larger_than_candidates_is_clipped():
    pos, _, _ = select_positives(CAND_LOGITS, 50, hard=True)
    assert pos.shape == (1, 6)


# ------------------------------- loss terms -------------------------------
def test_instance_term_by_hand():
    expected = -math.log(e(1) / (e(1) + e(.75) + e(.5) + e(0)) + EPS)
    assert _loss()['loss_ins'].item() == _approx(expected)
    # pure function, eps=0 is the exact log-softmax
    got = invp_instance_loss(torch.tensor([2.]), torch.tensor([[2., 1.2]]),
                             eps=0.)
    assert got.item() == pytest.approx(-math.log(e(2) / (e(2) + e(1.2))))


def test_instance_term_anchor_outside_background():
    # the anchor's own logit (-1) is not among the top-2 (1, .5): the code
    # still divides by the top-M sum only
    got = invp_instance_loss(torch.tensor([-1.]), torch.tensor([[1., .5]]))
    assert got.item() == pytest.approx(
        -math.log(e(-1) / (e(1) + e(.5)) + EPS), rel=1e-5, abs=1e-6)


def test_instance_term_paper_denominator_adds_the_anchor():
    # anchor 4 (logit -1) is outside the top-4 {0, 5, 1, 2}
    top = e(1) + e(.75) + e(.5) + e(0)
    bank_cfg = dict(temperature=1.0, n_background=4, diffusion_layer=2,
                    n_pos=2, knn_backend='torch')
    code = InvPLoss(**bank_cfg)(V, torch.tensor([4]), BANK, NEIGH)
    paper = InvPLoss(instance_denominator='paper', **bank_cfg)(
        V, torch.tensor([4]), BANK, NEIGH)
    assert code['loss_ins'].item() == _approx(-math.log(e(-1) / top + EPS))
    assert paper['loss_ins'].item() == _approx(
        -math.log(e(-1) / (top + e(-1)) + EPS))
    # anchor 0 is in its top-4: both agree
    assert _loss(instance_denominator='paper')['loss_ins'].item() == \
        _loss()['loss_ins'].item()


HARD_NUM = e(-1) + e(-.5)


@pytest.mark.parametrize('propagation', ['concat', 'bfs'])
def test_invariance_exclusive_by_hand(propagation):
    # code default: sum of the top-M minus the anchor's own term
    expected = -math.log(HARD_NUM / (e(.75) + e(.5) + e(0)) + EPS)
    got = _loss(propagation=propagation)['loss_inv'].item()
    assert got == _approx(expected)


def test_invariance_inclusive_by_hand():
    expected = -math.log(HARD_NUM / (e(1) + e(.75) + e(.5) + e(0)) + EPS)
    got = _loss(denominator='inclusive')['loss_inv'].item()
    assert got == _approx(expected)


@pytest.mark.parametrize('propagation', ['concat', 'bfs'])
def test_invariance_paper_denominator_by_hand(propagation):
    # B(i) = hard positives {4, 3} + (top-4 {0, 5, 1, 2} - N(i) {5, 3, 1, 4}
    # - anchor 0) = {4, 3} + {2}
    expected = -math.log(HARD_NUM / (HARD_NUM + e(0)) + EPS)
    got = _loss(denominator='paper', propagation=propagation)['loss_inv']
    assert got.item() == _approx(expected)


def test_easy_positive_ablation_by_hand():
    # hard_positive=False, n_pos=3, concat: {1 (anchor), .75, .75 (dup)}
    num = e(1) + 2 * e(.75)
    expected = -math.log(num / (e(.75) + e(.5) + e(0)) + EPS)
    got = _loss(hard_positive=False, n_pos=3)['loss_inv'].item()
    assert got == _approx(expected)
    # BFS: unique, anchor excluded: {.75, .5, -.5}
    num = e(.75) + e(.5) + e(-.5)
    expected = -math.log(num / (e(.75) + e(.5) + e(0)) + EPS)
    got = _loss(hard_positive=False, n_pos=3,
                propagation='bfs')['loss_inv'].item()
    assert got == _approx(expected)


def test_temperature_scales_logits():
    # t = 0.5: logits are 2 * COS
    expected = -math.log(e(2) / (e(2) + e(1.5) + e(1) + e(0)) + EPS)
    assert _loss(temperature=0.5)['loss_ins'].item() == _approx(expected)


def test_background_outside_by_hand():
    bg = torch.tensor([[0, 5, 1, 2]])
    cand = torch.tensor([[5, 3, 1, 0, 4, 5]])
    assert background_outside(bg, cand, IDX).tolist() == [[False, False,
                                                           False, True]]


def test_small_temperature_is_finite():
    g = torch.Generator().manual_seed(0)
    bank = torch.nn.functional.normalize(torch.randn(20, 4, generator=g), 1)
    feats = torch.nn.functional.normalize(torch.randn(3, 4, generator=g), 1)
    neigh = torch.randint(0, 20, (20, 2), generator=g)
    out = InvPLoss(temperature=0.005, n_background=10, diffusion_layer=2,
                   n_pos=3, knn_backend='torch')(feats, torch.arange(3),
                                                 bank, neigh)
    assert torch.isfinite(out['loss_ins']) and torch.isfinite(
        out['loss_inv'])


def test_bfs_row_without_positive_contributes_zero_without_nan():
    # an all-zero table: anchor 0 reaches only itself -> no positive
    neigh = torch.zeros(6, 2, dtype=torch.long)
    feats = V.clone().requires_grad_(True)
    out = InvPLoss(temperature=1.0, n_background=4, diffusion_layer=2,
                   n_pos=2, propagation='bfs', eps=0.,
                   knn_backend='torch')(feats, IDX, BANK, neigh)
    assert out['loss_inv'].item() == 0.0
    out['loss_inv'].backward()
    assert torch.isfinite(feats.grad).all()


# The pure invariance function trusts its caller: InvPLoss checks
# `denominator` where it enters (test_bad_arguments_name_the_key) and hands
# 'paper' its bg_keep mask (test_invariance_paper_denominator_by_hand).


def _dense_reference(feats, idx, bank, neigh, t, m, layers, n_pos):
    """Independent dense version of the authors' forward: the full B x N
    similarity matrix, exponentiated, top-M, concatenated propagation,
    hard positives, exclusive denominator."""
    s = torch.exp(feats @ bank.t() / t)
    rows = torch.arange(feats.size(0))
    s_self = s[rows, idx]
    bg, bg_idx = s.topk(m, dim=1)
    l_ins = -(s_self / bg.sum(1) + EPS).log().mean()
    lists = [neigh[idx]]
    for _ in range(layers - 1):
        lists.append(torch.stack([neigh[r].flatten() for r in lists[-1]]))
    cand = torch.cat(lists, 1)
    pos = torch.gather(s, 1, cand).topk(min(n_pos, cand.size(1)), dim=1,
                                         largest=False)[0]
    l_inv = -(pos.sum(1) / (bg.sum(1) - s_self) + EPS).log().mean()
    return l_ins, l_inv, bg_idx


def test_matches_dense_reference_values_and_gradients():
    g = torch.Generator().manual_seed(1)
    n, d, b = 40, 8, 5
    bank = torch.nn.functional.normalize(torch.randn(n, d, generator=g), 1)
    neigh = torch.randint(0, n, (n, 3), generator=g)
    idx = torch.tensor([3, 17, 0, 39, 22])
    x = torch.randn(b, d, generator=g)
    x1 = x.clone().requires_grad_(True)
    x2 = x.clone().requires_grad_(True)
    f1 = torch.nn.functional.normalize(x1, dim=1)
    f2 = torch.nn.functional.normalize(x2, dim=1)
    out = InvPLoss(temperature=0.2, n_background=12, diffusion_layer=3,
                   n_pos=7, knn_backend='torch')(f1, idx, bank, neigh)
    ref_ins, ref_inv, ref_bg = _dense_reference(f2, idx, bank, neigh, 0.2,
                                                12, 3, 7)
    torch.testing.assert_close(out['loss_ins'], ref_ins)
    torch.testing.assert_close(out['loss_inv'], ref_inv)
    assert out['bg_idx'].tolist() == ref_bg.tolist()
    (out['loss_ins'] + 0.6 * out['loss_inv']).backward()
    (ref_ins + 0.6 * ref_inv).backward()
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-4, atol=1e-6)


def _row(c):
    return [c, math.sqrt(max(0., 1 - c * c))]


def test_gradients_by_hand():
    # hand scenario, t = 1, eps = 0; the gradient with respect to v of a
    # term over logits l_j = v . m_j is sum_j (dL/dl_j) m_j.
    # L_ins = -log softmax_0 over the top-4 {0, 5, 1, 2}:
    #   dL/dv = sum_j p_j m_j - m_0,  p = softmax(1, .75, .5, 0)
    top = [1., .75, .5, 0.]
    z = sum(e(c) for c in top)
    g_ins = [sum(e(c) / z * _row(c)[d] for c in top) - _row(1.)[d]
             for d in range(2)]
    # L_inv (exclusive, hard positives {4, 3}: logits -1, -.5) =
    #   -log(sum_pos S) + log(sum_{5, 1, 2} S)  (the anchor's S_00 cancels)
    pos, rest = [-1., -.5], [.75, .5, 0.]
    zp, zr = sum(e(c) for c in pos), sum(e(c) for c in rest)
    g_inv = [sum(e(c) / zr * _row(c)[d] for c in rest)
             - sum(e(c) / zp * _row(c)[d] for c in pos) for d in range(2)]
    for key, expected in (('loss_ins', g_ins), ('loss_inv', g_inv)):
        v = V.clone().requires_grad_(True)
        out = InvPLoss(temperature=1.0, n_background=4, diffusion_layer=2,
                       n_pos=2, eps=0., knn_backend='torch')(v, IDX, BANK,
                                                             NEIGH)
        out[key].backward()
        assert v.grad[0].tolist() == pytest.approx(expected, rel=1e-5,
                                                   abs=1e-6)


def test_gradient_is_that_of_the_bank_before_an_in_place_update():
    # InvP writes the bank rows of the batch inside loss(), before
    # backward(): the gradient must still be the one of the bank the loss
    # saw (the authors update after the optimizer step)
    g = torch.Generator().manual_seed(2)
    n, d = 30, 6
    bank = torch.nn.functional.normalize(torch.randn(n, d, generator=g), 1)
    neigh = torch.randint(0, n, (n, 3), generator=g)
    idx = torch.tensor([4, 9, 0])
    x = torch.randn(3, d, generator=g)
    loss = InvPLoss(temperature=0.2, n_background=10, diffusion_layer=2,
                    n_pos=4, knn_backend='torch')
    grads = []
    for update in (False, True):
        xr = x.clone().requires_grad_(True)
        b = bank.clone()
        out = loss(torch.nn.functional.normalize(xr, dim=1), idx, b, neigh)
        if update:
            b[idx] = -b[idx]
            b[out['bg_idx'][:, 1]] = 0.
        (out['loss_ins'] + 0.6 * out['loss_inv']).backward()
        grads.append(xr.grad)
    torch.testing.assert_close(grads[1], grads[0], rtol=0, atol=0)


def test_no_gradient_when_features_do_not_require_it():
    with torch.no_grad():
        out = _loss()
    assert not out['loss_ins'].requires_grad
    assert out['loss_ins'].item() == _approx(
        -math.log(e(1) / (e(1) + e(.75) + e(.5) + e(0)) + EPS))


# ------------------------------- bad input --------------------------------
@pytest.mark.parametrize('kw,key', [
    (dict(temperature=0.), 'temperature'),
    (dict(temperature=-1.), 'temperature'),
    (dict(n_background=0), 'n_background'),
    (dict(diffusion_layer=0), 'diffusion_layer'),
    (dict(n_pos=0), 'n_pos'),
    (dict(denominator='paper2'), 'denominator'),
    (dict(propagation='dfs'), 'propagation'),
    (dict(knn_backend='gpu'), 'knn_backend'),
    (dict(eps=-1.), 'eps'),
    (dict(instance_denominator='x'), 'instance_denominator'),
])
def test_bad_arguments_name_the_key(kw, key):
    with pytest.raises(ValueError, match=key):
        InvPLoss(**kw)


def test_background_larger_than_bank():
    # InvP rejects it at construction (test_invp.py, naming n_background);
    # the loss alone fails in the background search
    with pytest.raises(ValueError, match='bank size=6'):
        _loss(n_background=7)
