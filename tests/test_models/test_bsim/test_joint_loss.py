"""Joint-similarity loss: values computed by hand on tiny tensors."""
import math

import pytest
import torch

from mmssl_ext.models.bsim.joint_loss import (
    cosine_distance, infonce, joint_contrastive_loss, joint_distance_loss)


def _ce(pos, negs, t):
    """-log softmax of the positive, written out."""
    num = math.exp(pos / t)
    return -math.log(num / (num + sum(math.exp(n / t) for n in negs)))


def test_infonce_flavour_by_hand():
    # one mixture, 2-d unit vectors
    q = torch.tensor([[1., 0.]])
    k_a = torch.tensor([[1., 0.]])  # cos 1
    k_b = torch.tensor([[0., 1.]])  # cos 0
    negs = torch.tensor([[0., 1.], [-1., 0.]])  # cos 0, -1
    lam, t = 0.75, 0.5
    want = lam * _ce(1., [0., -1.], t) + (1 - lam) * _ce(0., [0., -1.], t)
    got = joint_contrastive_loss(q, k_a, k_b, negs, lam, temperature=t)
    assert got.item() == pytest.approx(want, rel=1e-6)


def test_infonce_flavour_two_rows_and_mask():
    s = 1 / math.sqrt(2)
    q = torch.tensor([[1., 0.], [s, s]])
    k_a = torch.tensor([[0., 1.], [1., 0.]])  # cos: 0, s
    k_b = torch.tensor([[1., 0.], [0., -1.]])  # cos: 1, -s
    negs = torch.tensor([[-1., 0.], [0., 1.], [s, -s]])
    # row 0 cosines to negs: -1, 0, s ; row 1: -s, s, 0
    mask = torch.tensor([[False, True, False], [True, False, False]])
    lam, t = 0.4, 0.2
    # row 0 keeps negs 0 and 2, row 1 keeps negs 1 and 2
    l_a = (_ce(0., [-1., s], t) + _ce(s, [s, 0.], t)) / 2
    l_b = (_ce(1., [-1., s], t) + _ce(-s, [s, 0.], t)) / 2
    got = joint_contrastive_loss(
        q, k_a, k_b, negs, lam, temperature=t, neg_mask=mask)
    assert got.item() == pytest.approx(lam * l_a + (1 - lam) * l_b, rel=1e-5)


def test_simclr_style_exclusion_of_both_sources_by_hand():
    """In-batch keys of 3 instances x 2 views; the mixture of sources 0 and
    2 keeps only instance 1's two embeddings as negatives."""
    keys = torch.tensor([[1., 0.], [0., 1.],  # instance 0: views a, b
                         [-1., 0.], [0., -1.],  # instance 1
                         [0.6, 0.8], [0.8, 0.6]])  # instance 2
    q = torch.tensor([[0.6, -0.8]])
    mask = torch.tensor([[True, True, False, False, True, True]])
    lam, t = 0.3, 1.0
    # positives: view b of instance 0 (0, 1) and of instance 2 (0.8, 0.6)
    pos_a, pos_b = -0.8, 0.6 * 0.8 - 0.8 * 0.6
    negs = [-0.6, 0.8]  # q . (-1, 0), q . (0, -1)
    want = lam * _ce(pos_a, negs, t) + (1 - lam) * _ce(pos_b, negs, t)
    got = joint_contrastive_loss(q, keys[1:2], keys[5:6], keys, lam,
                                 temperature=t, neg_mask=mask)
    assert got.item() == pytest.approx(want, rel=1e-6)


def test_infonce_excludes_minus_inf():
    pos = torch.tensor([[0.5]])
    neg = torch.tensor([[0.1, float('-inf')]])
    assert infonce(pos, neg, 1.0).item() == pytest.approx(
        _ce(0.5, [0.1], 1.0), rel=1e-6)


def test_criterion_is_used():
    calls = []

    def crit(pos, neg):
        calls.append((pos.clone(), neg.clone()))
        return pos.sum()

    q = torch.tensor([[1., 0.]])
    out = joint_contrastive_loss(q, torch.tensor([[0.6, 0.8]]),
                                 torch.tensor([[1., 0.]]),
                                 torch.tensor([[0., 1.]]), 0.25,
                                 criterion=crit)
    assert out.item() == pytest.approx(0.25 * 0.6 + 0.75 * 1.0)
    assert len(calls) == 2 and calls[0][1].tolist() == [[0.]]


def test_contrastive_head_as_criterion():
    from mmssl_ext.registry import MODELS
    head = MODELS.build(
        dict(type='ContrastiveHead', loss=dict(type='CrossEntropyLoss'),
             temperature=0.2))
    q = torch.tensor([[1., 0.]])
    k_a, k_b = torch.tensor([[0.6, 0.8]]), torch.tensor([[0., -1.]])
    negs = torch.tensor([[-1., 0.], [0.8, 0.6]])
    lam = 0.6
    want = lam * _ce(0.6, [-1., 0.8], 0.2) + (1 - lam) * _ce(
        0., [-1., 0.8], 0.2)
    got = joint_contrastive_loss(q, k_a, k_b, negs, lam, criterion=head.loss)
    assert got.item() == pytest.approx(want, rel=1e-6)


def test_gradient_only_through_query():
    q = torch.nn.functional.normalize(torch.randn(3, 4), dim=1)
    q.requires_grad_(True)
    keys = [torch.nn.functional.normalize(torch.randn(3, 4), dim=1)
            for _ in range(2)]
    negs = torch.nn.functional.normalize(torch.randn(5, 4), dim=1)
    loss = joint_contrastive_loss(q, keys[0], keys[1], negs, 0.5)
    loss.backward()
    assert q.grad is not None and torch.isfinite(q.grad).all()


def test_cosine_flavour_by_hand():
    s = 1 / math.sqrt(2)
    pred = torch.tensor([[1., 0.], [1., 1.]], requires_grad=True)
    t_a = torch.tensor([[2., 0.], [1., 0.]], requires_grad=True)  # cos 1, s
    t_b = torch.tensor([[0., 3.], [-1., -1.]], requires_grad=True)  # 0, -1
    lam = 0.3
    d_a = ((2 - 2 * 1) + (2 - 2 * s)) / 2
    d_b = ((2 - 0) + (2 + 2)) / 2
    got = joint_distance_loss(pred, t_a, t_b, lam)
    assert got.item() == pytest.approx(lam * d_a + (1 - lam) * d_b,
                                       rel=1e-6)
    got.backward()
    assert pred.grad is not None
    assert t_a.grad is None and t_b.grad is None  # stop-gradient targets
    assert cosine_distance(torch.tensor([[1., 0.]]),
                           torch.tensor([[-1., 0.]])).item() == 4.0


def test_cosine_flavour_custom_distance():
    pred = torch.tensor([[1., 0.]])
    got = joint_distance_loss(
        pred, torch.tensor([[0., 1.]]), torch.tensor([[1., 0.]]), 0.2,
        distance=lambda p, t: -(p * t).sum(-1).mean())
    assert got.item() == pytest.approx(0.2 * 0. + 0.8 * -1.)


def test_lambda_tensor():
    q = torch.tensor([[1., 0.]])
    k = torch.tensor([[1., 0.]])
    negs = torch.tensor([[0., 1.]])
    a = joint_contrastive_loss(q, k, k, negs, torch.tensor(0.3))
    b = joint_contrastive_loss(q, k, k, negs, 0.3)
    assert a.item() == pytest.approx(b.item())
