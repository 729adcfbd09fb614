import pytest
import torch
import torch.nn.functional as F
from mmpretrain.structures import DataSample

from mmssl_ext.models.memories import check_memories
from mmssl_ext.registry import MODELS

N, D = 16, 8


def _model(neg_num=5, ensure_neg=False, length=N, tiny=None):
    return MODELS.build(
        dict(type='NPID',
             neg_num=neg_num,
             ensure_neg=ensure_neg,
             data_preprocessor=dict(type='SelfSupDataPreprocessor',
                                    mean=[127.5] * 3, std=[127.5] * 3),
             backbone=tiny,
             neck=dict(type='LinearNeck', in_channels=32, out_channels=D,
                       gap_dim=2),
             head=dict(type='ContrastiveHead',
                       loss=dict(type='CrossEntropyLoss'), temperature=0.07),
             memory=dict(type='FeatureMemory', length=length, feat_dim=D,
                         momentum=0.5)))


def _batch(idx, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(len(idx), 3, 16, 16, generator=g)
    samples = [DataSample(metainfo=dict(sample_idx=i)) for i in idx]
    return [x], samples


def test_loss_by_hand_and_memory_update(tiny_backbone):
    torch.manual_seed(0)
    model = _model(tiny=tiny_backbone)
    inputs, samples = _batch([3, 7, 11])
    idx = torch.tensor([3, 7, 11])
    neg = torch.tensor([[0, 1, 2, 4, 5], [6, 8, 9, 10, 12], [13, 14, 15, 0,
                                                            1]])
    model._sample_negatives = lambda i: neg
    old = model.memory.bank.clone()
    with torch.no_grad():  # BN in train mode: same batch -> same output
        f = F.normalize(model.neck(model.backbone(inputs[0]))[0], dim=1)
    losses = model.loss(inputs, samples)
    assert set(losses) == {'loss'}
    logits = torch.cat([(f * old[idx]).sum(1, keepdim=True),
                        torch.einsum('bd,bkd->bk', f, old[neg])], 1) / 0.07
    expected = F.cross_entropy(logits, torch.zeros(3, dtype=torch.long))
    torch.testing.assert_close(losses['loss'], expected, atol=1e-5,
                               rtol=1e-5)
    losses['loss'].backward()
    assert model.neck.fc.weight.grad is not None
    # memory: bank[i] = normalize(0.5 * old + 0.5 * f), others untouched
    new = F.normalize(0.5 * old[idx] + 0.5 * f, dim=1)
    torch.testing.assert_close(model.memory.bank[idx], new)
    rest = torch.ones(N, dtype=torch.bool)
    rest[idx] = False
    assert torch.equal(model.memory.bank[rest], old[rest])


def test_negatives_uniform_and_ensure_neg(tiny_backbone):
    model = _model(neg_num=50, ensure_neg=True, length=3, tiny=tiny_backbone)
    idx = torch.tensor([0, 1, 2, 2])
    neg = model._sample_negatives(idx)
    assert neg.shape == (4, 50)
    assert not (neg == idx.view(-1, 1)).any()
    assert neg.min() >= 0 and neg.max() < 3


def test_errors(tiny_backbone):
    model = _model(tiny=tiny_backbone)
    inputs, _ = _batch([0, 1])
    with pytest.raises(ValueError, match='PackInputs'):
        model.loss(inputs, [DataSample(), DataSample()])
    with pytest.raises(ValueError, match='model.memory.length=16'):
        check_memories(model, 20)
    check_memories(model, N)
    with pytest.raises(ValueError, match='neg_num'):
        _model(neg_num=0, tiny=tiny_backbone)


def test_memory_in_state_dict(tiny_backbone):
    model = _model(tiny=tiny_backbone)
    assert 'memory.bank' in model.state_dict()


def test_negatives_drawn_on_the_bank_device(tiny_backbone):
    """The draw happens where the bank lives (no B x neg_num host tensor
    per iteration on a GPU); on the CPU it is the seeded CPU stream."""
    model = _model(neg_num=50, tiny=tiny_backbone)
    idx = torch.tensor([0, 1, 2])
    calls = []
    real = torch.randint

    def spy(*args, **kwargs):
        calls.append(kwargs.get('device'))
        return real(*args, **kwargs)

    torch.randint = spy
    try:
        neg = model._sample_negatives(idx)
    finally:
        torch.randint = real
    assert calls == [model.memory.bank.device]
    g = torch.Generator().manual_seed(
        (model.seed * 1000003 + 0) * 1000003 + int(model.num_iters))
    assert torch.equal(neg, torch.randint(0, N, (3, 50), generator=g))
