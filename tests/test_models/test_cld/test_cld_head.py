"""CLD heads: NormedLinear, CLDNeck and the group branch, checked against
values worked out by hand on 2-d toy features."""
import math
import warnings

import pytest
import torch
import torch.nn as nn

from mmssl_ext.models.cld.cld_head import CLDGroupHead, cross_level_loss
from mmssl_ext.models.cld.group_branch import GroupBranch
from mmssl_ext.models.cld.cld_neck import CLDNeck, NormedLinear
from mmssl_ext.registry import MODELS

# View 1 / view 2 group features of 4 samples (already unit norm).
G1 = [[1., 0.], [0., 1.], [.8, .6], [.6, .8]]
G2 = [[1., 0.], [.8, .6], [0., 1.], [.6, .8]]
# k-means (K=2, init = first 2 rows), worked out by hand:
#  view 1: rows 0,1 seed the groups; (.8,.6) is 0.4 from (1,0) and 0.8 from
#  (0,1) -> group 0, (.6,.8) -> group 1; means (.9,.3), (.3,.9); stable.
#  view 2: seeds (1,0), (.8,.6); (0,1) is 2 / 0.8 away -> 1, (.6,.8) is
#  0.8 / 0.08 away -> 1; means (1,0), (1.4/3, 2.4/3); then (.8,.6) is 0.4
#  from (1,0) and 0.151 from (.467,.8) -> stays 1; stable.
Y1 = [0, 1, 0, 1]
C1 = [[.9, .3], [.3, .9]]
Y2 = [0, 1, 1, 1]
C2 = [[1., 0.], [1.4 / 3, 2.4 / 3]]


def _ce(logits_row, target):
    lse = math.log(sum(math.exp(v) for v in logits_row))
    return lse - logits_row[target]


def _dot(a, b):
    return sum(x * y for x, y in zip(a, b))


def _hand_loss(tau):
    l12 = [[_dot(g, c) / tau for c in C2] for g in G1]
    l21 = [[_dot(g, c) / tau for c in C1] for g in G2]
    ce12 = sum(_ce(r, t) for r, t in zip(l12, Y2)) / 4
    ce21 = sum(_ce(r, t) for r, t in zip(l21, Y1)) / 4
    acc = 100. * sum(
        max(range(2), key=lambda j: r[j]) == t for r, t in zip(l12, Y2)) / 4
    return 0.5 * (ce12 + ce21), acc


def test_normed_linear_is_cosine():
    layer = NormedLinear(2, 3)
    # every initial column has unit norm
    torch.testing.assert_close(layer.weight.norm(dim=0), torch.ones(3))
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[3., 0., 1.], [4., 2., 1.]]))
    x = torch.tensor([[6., 8.], [0., -2.]])
    # cos((6,8),(3,4)) = 1; cos((6,8),(0,2)) = .8; cos((6,8),(1,1)) = 14/(10
    # sqrt2); cos((0,-2),(3,4)) = -.8; (0,-2)/(0,2) = -1; (0,-2)/(1,1)=-1/sqrt2
    expected = torch.tensor([[1., .8, 1.4 / math.sqrt(2)],
                             [-.8, -1., -1 / math.sqrt(2)]])
    torch.testing.assert_close(layer(x), expected)
    torch.testing.assert_close(layer(5 * x), expected)  # scale invariant
    out = layer(x)
    out.sum().backward()
    assert layer.weight.grad is not None


def test_neck_layouts():
    x = (torch.randn(3, 8, 2, 2), )
    neck = CLDNeck(8, 4)
    inst, group = neck(x)
    assert inst.shape == group.shape == (3, 4)
    assert isinstance(neck.inst_proj, nn.Linear)
    assert neck.inst_proj is not neck.group_proj
    n = CLDNeck(8, 4, hid_channels=16, proj_type='normed')
    assert isinstance(n.group_proj, NormedLinear)
    assert isinstance(n.shared[0], nn.Linear)
    assert n.shared[0].out_features == 16
    inst, group = n(x)
    assert inst.abs().max() <= 1 + 1e-6  # cosines
    # both projections see the same pooled feature
    pooled = x[0].mean((2, 3))
    torch.testing.assert_close(n.inst_proj(n.shared(pooled)), inst)
    assert len(CLDNeck(8, 4, with_group=False)(x)) == 1
    with pytest.raises(ValueError, match='proj_type'):
        CLDNeck(8, 4, proj_type='cosine')
    assert isinstance(MODELS.build(dict(type='NormedLinear', in_features=2,
                                        out_features=2)), NormedLinear)


def test_group_kmeans_by_hand():
    head = CLDGroupHead(num_groups=2, temperature=0.5)
    g = torch.tensor([G1, G2])
    labels, cents = head.group(g)
    assert labels.tolist() == [Y1, Y2]
    torch.testing.assert_close(cents, torch.tensor([C1, C2]))


def test_group_loss_by_hand():
    tau, lam = 0.5, 0.3
    head = CLDGroupHead(num_groups=2, temperature=tau)
    # features are normalised inside: scaling a row must not matter
    g1 = torch.tensor(G1) * torch.tensor([[2.], [1.], [3.], [1.]])
    out = head.loss(g1, torch.tensor(G2))
    loss, acc = _hand_loss(tau)
    assert set(out) == {'loss_group', 'group_acc'}
    assert out['loss_group'].item() == pytest.approx(loss, rel=1e-5)
    # the branch weights it by lambda
    branch = GroupBranch(num_groups=2, temperature=tau, loss_weight=lam)
    assert branch.loss_weight == lam and branch.head.temperature == tau
    assert out['group_acc'].item() == pytest.approx(acc)
    assert not out['group_acc'].requires_grad
    # the pure function, unweighted
    l2, a2 = cross_level_loss(
        torch.tensor(G1), torch.tensor(G2), torch.tensor(Y1),
        torch.tensor(C1), torch.tensor(Y2), torch.tensor(C2), tau)
    assert l2.item() == pytest.approx(loss, rel=1e-5)
    assert a2.item() == pytest.approx(acc)


def test_group_gradient_flows_through_centroids():
    tau = 0.5
    head = CLDGroupHead(num_groups=2, temperature=tau)
    g1 = torch.tensor(G1, requires_grad=True)
    g2 = torch.tensor(G2, requires_grad=True)
    head.loss(g1, g2)['loss_group'].backward()
    # reference written out: centroids = means of the hand-assigned rows,
    # built from the leaf tensors so their gradient is included
    r1 = torch.tensor(G1, requires_grad=True)
    r2 = torch.tensor(G2, requires_grad=True)
    c1 = torch.stack([(r1[0] + r1[2]) / 2, (r1[1] + r1[3]) / 2])
    c2 = torch.stack([r2[0], (r2[1] + r2[2] + r2[3]) / 3])
    ref = 0.5 * (nn.functional.cross_entropy(r1 @ c2.t() / tau,
                                             torch.tensor(Y2)) +
                 nn.functional.cross_entropy(r2 @ c1.t() / tau,
                                             torch.tensor(Y1)))
    ref.backward()
    # unit rows: the normalisation's Jacobian projects out the radial part
    def tangential(g, x):
        return g - (g * x).sum(1, keepdim=True) * x
    torch.testing.assert_close(g1.grad, tangential(r1.grad, r1.detach()))
    torch.testing.assert_close(g2.grad, tangential(r2.grad, r2.detach()))
    # and the centroid path matters: with detached centroids the gradient
    # would differ
    d1 = torch.tensor(G1, requires_grad=True)
    d2 = torch.tensor(G2, requires_grad=True)
    det = 0.5 * (nn.functional.cross_entropy(d1 @ c2.detach().t() / tau,
                                             torch.tensor(Y2)) +
                 nn.functional.cross_entropy(d2 @ c1.detach().t() / tau,
                                             torch.tensor(Y1)))
    det.backward()
    assert not torch.allclose(tangential(d1.grad, d1.detach()), g1.grad)


def test_empty_group_gets_zero_centroid():
    head = CLDGroupHead(num_groups=3)
    g = torch.tensor([[1., 0.], [1., 0.], [0., 1.], [0., 1.]])
    labels, cents = head.group(g)
    # rows 0 and 1 tie between seeds 0 and 1: the first wins, group 1 empty
    assert labels.tolist() == [0, 0, 2, 2]
    torch.testing.assert_close(cents,
                               torch.tensor([[1., 0.], [0., 0.], [0., 1.]]))


def test_more_groups_than_samples_warns_once():
    head = CLDGroupHead(num_groups=6)
    g1 = torch.nn.functional.normalize(torch.randn(4, 3), dim=1)
    g2 = torch.nn.functional.normalize(torch.randn(4, 3), dim=1)
    with pytest.warns(UserWarning, match='num_groups=6'):
        out = head.loss(g1, g2)
    labels, cents = head.group(g1)
    assert labels.tolist() == [0, 1, 2, 3]  # every sample its own group
    torch.testing.assert_close(cents[4:], torch.zeros(2, 3))
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        head.loss(g1, g2)  # only once
    assert torch.isfinite(out['loss_group'])


def test_ncut_grouping_in_head():
    torch.manual_seed(0)
    a = torch.tensor([1., 0., 0.]) + 0.1 * torch.randn(4, 3)
    b = torch.tensor([0., 0., 1.]) + 0.1 * torch.randn(4, 3)
    g = torch.cat([a, b])
    head = CLDGroupHead(num_groups=2, grouping='ncut', num_eigvecs=2)
    labels, cents = head.group(g)
    # the two blobs are cut apart (label ids depend on the first-K seeds)
    la, lb = labels[:4].tolist(), labels[4:].tolist()
    assert len(set(la)) == len(set(lb)) == 1 and la[0] != lb[0]
    out = head.loss(g, g.flip(0))
    assert torch.isfinite(out['loss_group'])
    gn = torch.nn.functional.normalize(g, dim=1)
    labels, cents = head.group(gn)
    # centroids are means of the group features of each cut
    torch.testing.assert_close(cents[labels[0]], gn[:4].mean(0))
    torch.testing.assert_close(cents[labels[4]], gn[4:].mean(0))


@pytest.mark.parametrize('kwargs, key', [
    (dict(num_groups=0), 'num_groups'),
    (dict(num_groups=2.5), 'num_groups'),
    (dict(num_groups=4, temperature=0.), 'temperature'),
    (dict(num_groups=4, temperature=-1), 'temperature'),
    (dict(num_groups=4, grouping='spectral'), 'grouping'),
    (dict(num_groups=4, num_iters=0), 'num_iters'),
    (dict(num_groups=4, num_eigvecs=0), 'num_eigvecs'),
])
def test_bad_config_names_key(kwargs, key):
    with pytest.raises(ValueError, match=key):
        CLDGroupHead(**kwargs)
    with pytest.raises(ValueError, match=key):  # through the branch
        GroupBranch(**kwargs)


def test_bad_branch_weight_names_key():
    with pytest.raises(ValueError, match='loss_weight'):
        GroupBranch(num_groups=4, loss_weight=-0.1)


def test_loss_shape_mismatch():
    head = CLDGroupHead(num_groups=2)
    with pytest.raises(ValueError, match='same shape'):
        head.loss(torch.randn(4, 3), torch.randn(5, 3))
