import pytest
import torch
import torch.nn.functional as F
from mmengine.runner import Runner
from mmpretrain.structures import DataSample

from mmssl_ext.models.algorithms.deepcluster import Sobel
from mmssl_ext.models.memories import check_memories
from mmssl_ext.registry import MODELS
from mmssl_testing import (TINY_PREPROCESSOR, dataloader, runner_cfg,
                               synthetic_dataset)
from mmssl_ext.utils.dist import get_sample_idx

N, K = 16, 3


def _cfg(n=N, k=K, with_sobel=True):
    return dict(
        type='DeepCluster', with_sobel=with_sobel,
        memory=dict(type='LabelMemory', length=n, num_clusters=k),
        data_preprocessor=TINY_PREPROCESSOR,
        backbone=dict(type='ResNet_CIFAR', depth=18, stem_channels=4,
                      base_channels=4, in_channels=2 if with_sobel else 3,
                      norm_cfg=dict(type='BN')),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=k, in_channels=32,
                  loss=dict(type='CrossEntropyLoss')))


def _batch(idx, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(len(idx), 3, 16, 16, generator=g)
    return [x], [DataSample(metainfo=dict(sample_idx=i)) for i in idx]


def test_sobel_by_hand():
    # vertical step edge: left column 0, right columns 3 (all channels)
    x = torch.zeros(1, 3, 3, 3)
    x[..., 1:] = 3.
    out = Sobel()(x)
    assert out.shape == (1, 2, 3, 3)
    # centre pixel, zero padding: gx = sum(k * patch) with
    # k = [[1,0,-1],[2,0,-2],[1,0,-1]], patch rows [0,3,3] -> -(3+6+3)
    assert out[0, 0, 1, 1] == -12.
    assert out[0, 1, 1, 1] == 0.  # vertical gradient of a vertical edge
    assert len(list(Sobel().parameters())) == 0  # fixed, not learnt


def test_loss_by_hand(tiny_backbone):
    model = MODELS.build(_cfg())
    with pytest.raises(RuntimeError, match='OfflineClusterHook'):
        model.loss(*_batch([0, 1]))
    assert not model.memory.initialized
    labels = torch.arange(N) % K
    model.memory.set_clusters(None, labels)
    assert model.memory.initialized
    inputs, samples = _batch([2, 5, 7])
    with torch.no_grad():
        logits = model.head.fc(
            model.backbone(Sobel()(inputs[0]))[-1].mean((2, 3)))
    losses = model.loss(inputs, samples)
    expected = F.cross_entropy(logits, labels[[2, 5, 7]])
    torch.testing.assert_close(losses['loss'], expected, atol=1e-5,
                               rtol=1e-5)
    with pytest.raises(ValueError, match='labels must be in'):
        model.memory.set_clusters(None, torch.full((N, ), K))
    with pytest.raises(ValueError, match='model.memory.length=16'):
        check_memories(model, 15)
    with pytest.raises(ValueError, match='num_clusters=20'):
        MODELS.build(_cfg(k=20))


def test_reset_head_seeded():
    a, b = MODELS.build(_cfg()), MODELS.build(_cfg())
    a.reset_head(seed=3)
    b.reset_head(seed=3)
    assert torch.equal(a.head.fc.weight, b.head.fc.weight)
    assert (a.head.fc.bias == 0).all()
    assert 0.002 < float(a.head.fc.weight.detach().std()) < 0.05
    b.reset_head(seed=4)
    assert not torch.equal(a.head.fc.weight, b.head.fc.weight)


def test_pseudo_labels_reach_loss_with_persistent_workers(tmp_path):
    """Labels are model buffers indexed by sample_idx: with num_workers=2
    and persistent_workers=True every epoch trains on the labels of the
    latest clustering (MMSelfSup 1.x served the first clustering's labels
    from the persistent workers' copy of the data set)."""
    from mmssl_ext.engine.hooks import OfflineClusterHook
    model = MODELS.build(_cfg())
    clusterings, used = [], []
    orig_cluster = OfflineClusterHook.cluster

    def cluster_spy(self, runner):
        labels = orig_cluster(self, runner)
        clusterings.append(labels.clone())
        return labels

    orig_loss, orig_cls, batch = model.loss, model._cls_loss, {}

    def loss_spy(inputs, data_samples):
        batch['idx'] = get_sample_idx(data_samples)
        return orig_loss(inputs, data_samples)

    def cls_spy(feats, labels):  # the targets that enter the CE
        used.append((len(clusterings), batch['idx'], labels.clone()))
        return orig_cls(feats, labels)

    model.loss, model._cls_loss = loss_spy, cls_spy
    OfflineClusterHook.cluster = cluster_spy
    try:
        extract = dataloader(synthetic_dataset(N, pipeline=[
            dict(type='PackInputs')]), batch_size=8, round_up=False)
        train = dataloader(synthetic_dataset(N), batch_size=4, shuffle=True,
                           num_workers=2, persistent_workers=True)
        cfg = runner_cfg(
            model, str(tmp_path), max_epochs=3, train_dataloader=train,
            custom_hooks=[dict(type='OfflineClusterHook',
                               extract_dataloader=extract,
                               clustering=dict(backend='torch',
                                               init='random'),
                               interval=1, reset_head=True,
                               progress=False)])
        cfg['model'] = model
        Runner(**cfg).train()
    finally:
        OfflineClusterHook.cluster = orig_cluster
    assert len(clusterings) == 4  # before training + after each epoch
    # every sample trained in epoch e used the e-th clustering's labels
    for n_done, idx, labels in used:
        assert torch.equal(labels, clusterings[n_done - 1][idx])
    assert {n for n, _, _ in used} == {1, 2, 3}
    # the labels really changed between clusterings (test not vacuous)
    assert any(not torch.equal(clusterings[i], clusterings[i + 1])
               for i in range(3))
    assert torch.equal(model.memory.labels, clusterings[-1])
