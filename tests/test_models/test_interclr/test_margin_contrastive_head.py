"""MarginContrastiveHead: cosine and arc margins checked against values
computed by hand (angles through math.acos / math.cos)."""
import math

import pytest
import torch

from mmssl_ext.models.interclr.margin_head import (
    MarginContrastiveHead, apply_margins)

CE = dict(type='CrossEntropyLoss')


def _ce0(logits):
    """-log softmax(logits)[0], by hand."""
    return -logits[0] + math.log(sum(math.exp(v) for v in logits))


def test_no_margin_is_plain_infonce():
    head = MarginContrastiveHead(loss=CE, temperature=0.2)
    pos, neg = torch.tensor([[0.6]]), torch.tensor([[0.2, -0.1]])
    expect = _ce0([0.6 / 0.2, 0.2 / 0.2, -0.1 / 0.2])
    assert head.loss(pos, neg).item() == pytest.approx(expect, rel=1e-6)


def test_cos_margin_by_hand():
    # InterCLR default -0.5: the positive 0.6 becomes 1.1
    head = MarginContrastiveHead(loss=CE, temperature=0.2, cos_margin=-0.5)
    pos = torch.tensor([[0.6], [-0.3]])
    neg = torch.tensor([[0.2, -0.1], [0.5, 0.4]])
    e1 = _ce0([1.1 / 0.2, 0.2 / 0.2, -0.1 / 0.2])
    e2 = _ce0([0.2 / 0.2, 0.5 / 0.2, 0.4 / 0.2])
    assert head.loss(pos, neg).item() == pytest.approx((e1 + e2) / 2,
                                                       rel=1e-6)
    # positive margin: stricter
    out = apply_margins(torch.tensor([0.6]), cos_margin_value=0.2)
    assert out.item() == pytest.approx(0.4)


@pytest.mark.parametrize('cos_t,m,expect', [
    # inside the valid range: cos(theta + m)
    (0.6, 0.5, math.cos(math.acos(0.6) + 0.5)),
    (0.5, -0.3, math.cos(math.acos(0.5) - 0.3)),
    # theta >= pi - m (m > 0): cos(theta) - sin(pi - m) * m
    (-0.95, 0.5, -0.95 - math.sin(math.pi - 0.5) * 0.5),
    # theta <= |m| (m < 0): cos(theta) + sin(m) * m
    (0.99, -0.3, 0.99 + math.sin(-0.3) * -0.3),
])
def test_arc_margin_by_hand(cos_t, m, expect):
    out = apply_margins(torch.tensor([cos_t], dtype=torch.float64),
                        arc_margin_value=m)
    assert out.item() == pytest.approx(expect, abs=1e-9)


def test_arc_margin_loss_and_both_margins():
    head = MarginContrastiveHead(loss=CE, temperature=0.5, arc_margin=0.5)
    pos, neg = torch.tensor([[0.6]]), torch.tensor([[0.1]])
    p = math.cos(math.acos(0.6) + 0.5)
    assert head.loss(pos, neg).item() == pytest.approx(
        _ce0([p / 0.5, 0.1 / 0.5]), rel=1e-5)
    # both: cosine first, then arc (reference order)
    head2 = MarginContrastiveHead(loss=CE, temperature=0.5, cos_margin=0.1,
                                  arc_margin=0.2)
    p2 = math.cos(math.acos(0.5) + 0.2)
    assert head2.loss(pos, neg).item() == pytest.approx(
        _ce0([p2 / 0.5, 0.1 / 0.5]), rel=1e-5)


def test_margin_gradient_flows():
    head = MarginContrastiveHead(loss=CE, temperature=0.2, arc_margin=0.3)
    pos = torch.tensor([[0.3]], requires_grad=True)
    neg = torch.tensor([[0.1, 0.2]], requires_grad=True)
    head.loss(pos, neg).backward()
    assert pos.grad.item() < 0 and torch.isfinite(neg.grad).all()


@pytest.mark.parametrize('kwargs,key', [
    (dict(temperature=0.), 'temperature'),
    (dict(temperature=-1.), 'temperature'),
    (dict(cos_margin='a'), 'cos_margin'),
    (dict(arc_margin=3.), 'arc_margin'),
])
def test_bad_arguments(kwargs, key):
    with pytest.raises((ValueError, TypeError), match=key):
        MarginContrastiveHead(loss=CE, **kwargs)


def test_registered():
    from mmssl_ext.registry import MODELS
    head = MODELS.build(dict(type='MarginContrastiveHead', loss=CE,
                             temperature=0.2, cos_margin=-0.5))
    assert head.cos_margin == -0.5 and head.arc_margin is None
