"""ChannelsLastHook: after training starts every 4-D parameter of the model
(momentum encoder included) is stored channels_last, the optimizer still
updates the same parameter objects, and training agrees with the default
layout to rounding."""
import pytest
import torch
from mmengine.runner import Runner

from mmssl_testing.runner import (TINY_BACKBONE, TINY_PREPROCESSOR,
                                  dataloader, runner_cfg, synthetic_dataset)

MOCO = dict(
    type='MoCo', queue_len=16, feat_dim=8, momentum=0.1,
    data_preprocessor=TINY_PREPROCESSOR,
    backbone=dict(TINY_BACKBONE, stem_channels=8, base_channels=8),
    neck=dict(type='NonLinearNeck', in_channels=64, hid_channels=16,
              out_channels=8, num_layers=2, norm_cfg=dict(type='BN1d'),
              with_avg_pool=True),
    head=dict(type='ContrastiveHead', loss=dict(type='CrossEntropyLoss'),
              temperature=0.2))
VIEWS = [dict(type='MultiView', num_views=2,
              transforms=[[dict(type='RandomFlip', prob=0.5)]]),
         dict(type='PackInputs')]


def _train(work_dir, hooks, model=MOCO):
    loader = dataloader(synthetic_dataset(16, pipeline=VIEWS), batch_size=8,
                        shuffle=True, drop_last=True)
    runner = Runner.from_cfg(runner_cfg(
        model, work_dir, max_epochs=1, train_dataloader=loader,
        custom_hooks=hooks, default_hooks=dict(checkpoint=None)))
    params = list(runner.model.parameters())
    runner.train()
    return runner, params


def test_model_is_channels_last_and_trains_like_the_default(tmp_path):
    plain, _ = _train(str(tmp_path / 'a'), [])
    runner, params = _train(str(tmp_path / 'b'),
                            [dict(type='ChannelsLastHook')])
    convs = {k: v for k, v in runner.model.state_dict().items()
             if v.dim() == 4}
    assert any(k.startswith('encoder_k.') for k in convs)
    for k, v in convs.items():
        assert v.is_contiguous(memory_format=torch.channels_last), k
        if v.shape[-1] > 1:  # a 1x1 kernel is both
            assert not v.is_contiguous(), k
    # the optimizer trained the parameter objects the model holds
    assert [id(p) for p in runner.model.parameters()] == \
        [id(p) for p in params]
    assert runner.optim_wrapper.optimizer.param_groups[0]['params'][0] \
        is params[0]
    want = plain.model.state_dict()
    changed = 0
    for k, v in runner.model.state_dict().items():
        torch.testing.assert_close(v, want[k], rtol=1e-4, atol=1e-5)
        changed += 'backbone' in k and v.dim() == 4
    assert changed  # and training moved them (not a frozen copy)
    first = plain.model.state_dict()['backbone.conv1.weight']
    assert not torch.equal(first, torch.zeros_like(first))


def test_refuses_the_layer_onednn_corrupts(tmp_path):
    """A 1x1 stride-2 convolution with 4 input channels (the 4-channel test
    backbone's first downsampling shortcut) aborts the process in oneDNN's
    channels_last backward: refused before training, naming the module."""
    narrow = dict(MOCO, backbone=TINY_BACKBONE,
                  neck=dict(MOCO['neck'], in_channels=32))
    with pytest.raises(ValueError, match=r'backbone\.layer2\.0\.downsample'
                       r'\.0 is a 1x1 convolution with stride \(2, 2\) and '
                       r'4 input channels'):
        _train(str(tmp_path), [dict(type='ChannelsLastHook')], narrow)
