import pytest
import torch
import torch.nn.functional as F
from mmpretrain.structures import DataSample

from mmssl_ext.registry import MODELS

N, D, K = 16, 8, 4


def _model(tiny):
    return MODELS.build(
        dict(type='ODC',
             data_preprocessor=dict(type='SelfSupDataPreprocessor',
                                    mean=[127.5] * 3, std=[127.5] * 3),
             backbone=tiny,
             neck=dict(type='ODCNeck', in_channels=32, hid_channels=16,
                       out_channels=D, dropout=0.),
             head=dict(type='LinearClsHead', num_classes=K, in_channels=D,
                       loss=dict(type='CrossEntropyLoss')),
             memory=dict(type='ClusterMemory', length=N, feat_dim=D,
                         num_clusters=K, momentum=0.5, min_cluster=2,
                         init='data')))


def _batch(idx, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(len(idx), 3, 16, 16, generator=g)
    return [x], [DataSample(metainfo=dict(sample_idx=i)) for i in idx]


def test_odc_neck_shape_and_relu():
    neck = MODELS.build(dict(type='ODCNeck', in_channels=6, hid_channels=5,
                             out_channels=3))
    out = neck((torch.randn(4, 6, 2, 2), ))
    assert isinstance(out, tuple) and out[0].shape == (4, 3)
    assert (out[0] >= 0).all()  # final ReLU
    assert not neck.bn0.affine and neck.bn0.momentum == 0.001


def test_requires_initial_clustering(tiny_backbone):
    model = _model(tiny_backbone)
    with pytest.raises(RuntimeError, match='OfflineClusterHook'):
        model.loss(*_batch([0, 1]))
    assert not model.memory.initialized


def test_loss_weighted_ce_and_memory_update_by_hand(tiny_backbone):
    torch.manual_seed(0)
    model = _model(tiny_backbone)
    g = torch.Generator().manual_seed(1)
    labels = torch.tensor([0] * 8 + [1] * 4 + [2] * 3 + [3])
    model.memory.set_clusters(torch.randn(N, D, generator=g), labels)
    assert model.memory.initialized
    w = torch.tensor([8., 4., 3., 1.])**-0.5
    class_weights = model.class_weights()
    torch.testing.assert_close(class_weights, w / w.sum())

    idx = torch.tensor([1, 9, 12, 15])
    inputs, samples = _batch(idx.tolist())
    old_bank = model.memory.bank.clone()
    with torch.no_grad():
        f = model.neck(model.backbone(inputs[0]))[0]
        logits = model.head.fc(f)
    losses = model.loss(inputs, samples)
    assert set(losses) == {'loss', 'change_ratio'}
    y = labels[idx]
    per = F.cross_entropy(logits, y, reduction='none')
    wy = class_weights[y]
    torch.testing.assert_close(losses['loss'], (per * wy).sum() / wy.sum(),
                               atol=1e-5, rtol=1e-5)
    # memory rows blended, relabelled against the centroids
    new = F.normalize(0.5 * old_bank[idx] + 0.5 * F.normalize(f, dim=1),
                      dim=1)
    torch.testing.assert_close(model.memory.bank[idx], new)
    new_labels = (new @ model.memory.centroids.t()).argmax(1)
    assert torch.equal(model.memory.label_bank[idx], new_labels)
    ratio = (new_labels != y).float().mean()
    torch.testing.assert_close(losses['change_ratio'], ratio)
    losses['loss'].backward()
    assert model.head.fc.weight.grad is not None


def test_state_dict_holds_all_state(tiny_backbone):
    model = _model(tiny_backbone)
    keys = set(model.state_dict())
    for k in ('memory.bank', 'memory.label_bank', 'memory.centroids',
              'memory.num_splits', 'memory.initialized'):
        assert k in keys


def test_head_classes_must_match_memory(tiny_backbone):
    cfg = dict(type='ODC', backbone=tiny_backbone,
               neck=dict(type='ODCNeck', in_channels=32, hid_channels=16,
                         out_channels=D),
               head=dict(type='LinearClsHead', num_classes=K + 1,
                         in_channels=D),
               memory=dict(type='ClusterMemory', length=N, feat_dim=D,
                           num_clusters=K))
    with pytest.raises(ValueError, match='head.num_classes=5'):
        MODELS.build(cfg)
