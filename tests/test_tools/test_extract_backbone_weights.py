"""tools/model_converters/extract_backbone_weights.py: online / momentum
extraction, idempotence (MMSelfSup#286), errors, depth checks, --verify."""
import importlib.util
import os.path as osp

import pytest
import torch

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
TOOL = osp.join(ROOT, 'tools', 'model_converters',
                'extract_backbone_weights.py')

TINY = dict(type='ResNet_CIFAR', depth=18, stem_channels=4, base_channels=4,
            norm_cfg=dict(type='BN'))


def _tool():
    spec = importlib.util.spec_from_file_location('_ebw', TOOL)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


ebw = _tool()


def _moco():
    from mmssl_ext.registry import MODELS
    torch.manual_seed(0)
    model = MODELS.build(
        dict(type='MoCo', queue_len=8, feat_dim=8, momentum=0.01,
             backbone=TINY,
             neck=dict(type='MoCoV2Neck', in_channels=32, hid_channels=16,
                       out_channels=8, with_avg_pool=True),
             head=dict(type='ContrastiveHead',
                       loss=dict(type='CrossEntropyLoss'), temperature=0.2)))
    # make the momentum encoder differ from the online one
    with torch.no_grad():
        for p in model.encoder_k.module.parameters():
            p.add_(1.0)
    return model


CFG_TEXT = ("model = dict(type='MoCo', backbone=dict(type='ResNet_CIFAR', "
            "depth={depth}, stem_channels=4, base_channels=4))\n")


@pytest.fixture(scope='module')
def moco():
    return _moco()


@pytest.fixture
def pretrain_ckpt(tmp_path, moco):
    path = str(tmp_path / 'epoch_2.pth')
    torch.save(
        dict(state_dict=moco.state_dict(),
             meta=dict(epoch=2, iter=8, cfg=CFG_TEXT.format(depth=18)),
             optimizer={'state': {}}), path)
    return path


def _quiet(*a, **k):
    pass


class _Blocked:
    """Pickles as a call of os.getcwd (harmless, but from a module that
    torch's safe loader blocks)."""

    def __reduce__(self):
        import os
        return (os.getcwd, ())


def test_online_extraction_keys_values_and_meta(tmp_path, moco,
                                                pretrain_ckpt):
    out = str(tmp_path / 'backbone.pth')
    res = ebw.extract_backbone(pretrain_ckpt, out, log=_quiet)
    saved = torch.load(out)  # safe default (weights_only=True) works
    assert set(saved) == {'state_dict', 'meta'}
    sd = saved['state_dict']
    ref = moco.backbone.state_dict()
    assert list(sd) == list(ref)  # bare ResNet keys, same order
    for k in ref:
        assert torch.equal(sd[k], ref[k]), k
    meta = saved['meta']
    assert meta['extracted_backbone'] is True
    assert meta['source'] == 'online' and meta['prefix'] == 'backbone.'
    assert meta['epoch'] == 2 and meta['converted_from'] == 'epoch_2.pth'
    arch = meta['arch']
    assert (arch['depth'], arch['block'], arch['stem'],
            arch['base_channels'], arch['stage_blocks']) == (
                18, 'BasicBlock', 'cifar', 4, [2, 2, 2, 2])
    assert not res['already_extracted']


def test_momentum_extraction_takes_the_ema_encoder(tmp_path, moco,
                                                   pretrain_ckpt):
    out = str(tmp_path / 'backbone_k.pth')
    ebw.extract_backbone(pretrain_ckpt, out, source='momentum', log=_quiet)
    saved = torch.load(out)
    assert saved['meta']['prefix'] == 'encoder_k.module.0.'
    ref_k = moco.encoder_k.module[0].state_dict()
    ref_q = moco.backbone.state_dict()
    w = 'layer1.0.conv1.weight'
    assert torch.equal(saved['state_dict'][w], ref_k[w])
    assert not torch.equal(saved['state_dict'][w], ref_q[w])
    assert set(saved['state_dict']) == set(ref_q)


def test_idempotent_on_extracted_file(tmp_path, pretrain_ckpt):
    once = str(tmp_path / 'once.pth')
    twice = str(tmp_path / 'twice.pth')
    ebw.extract_backbone(pretrain_ckpt, once, log=_quiet)
    logs = []
    res = ebw.extract_backbone(once, twice, log=logs.append)
    assert res['already_extracted']
    assert any('already a backbone-only' in m for m in logs)
    a, b = torch.load(once), torch.load(twice)
    assert list(a['state_dict']) == list(b['state_dict'])
    for k in a['state_dict']:
        assert torch.equal(a['state_dict'][k], b['state_dict'][k])
    assert b['meta']['converted_from'] == 'epoch_2.pth'
    # a bare state dict (no meta, e.g. a third-party backbone file) too
    bare = str(tmp_path / 'bare.pth')
    torch.save(a['state_dict'], bare)
    res = ebw.extract_backbone(bare, str(tmp_path / 'b2.pth'), log=_quiet)
    assert res['already_extracted']
    # but the momentum encoder cannot be taken from an online extraction
    with pytest.raises(ebw.ConversionError, match='online encoder'):
        ebw.extract_backbone(once, None, source='momentum', log=_quiet)


def test_not_a_checkpoint_errors(tmp_path):
    txt = tmp_path / 'notes.pth'
    txt.write_text('this is not a checkpoint\n' * 10)
    with pytest.raises(ebw.NotACheckpointError, match='not a PyTorch checkpoint'):
        ebw.extract_backbone(str(txt), None, log=_quiet)
    lst = str(tmp_path / 'list.pth')
    torch.save([1, 2, 3], lst)
    with pytest.raises(ebw.NotACheckpointError, match='not a checkpoint'):
        ebw.extract_backbone(lst, None, log=_quiet)
    nothing = str(tmp_path / 'empty.pth')
    torch.save({'meta': {'epoch': 1}}, nothing)
    with pytest.raises(ebw.NotACheckpointError, match='no tensors'):
        ebw.extract_backbone(nothing, None, log=_quiet)
    with pytest.raises(FileNotFoundError):
        ebw.extract_backbone(str(tmp_path / 'missing.pth'), None,
                             log=_quiet)
    empty = tmp_path / 'zero.pth'
    empty.write_bytes(b'')
    with pytest.raises(ebw.NotACheckpointError):
        ebw.extract_backbone(str(empty), None, log=_quiet)
    truncated = tmp_path / 'truncated.pth'
    with open(lst, 'rb') as f:
        truncated.write_bytes(f.read()[:100])
    with pytest.raises(ebw.NotACheckpointError):
        ebw.extract_backbone(str(truncated), None, log=_quiet)
    # a checkpoint with objects the safe loader refuses: said so, not
    # 'not a checkpoint'
    import argparse
    unsafe = str(tmp_path / 'unsafe.pth')
    torch.save({'args': argparse.Namespace(a=1),
                'state_dict': {'w': torch.zeros(1)}}, unsafe)
    with pytest.raises(ebw.PickledObjectsError, match='Namespace'):
        ebw.extract_backbone(unsafe, None, log=_quiet)
    # also a callable from a module torch blocks outright (os.system ...)
    blocked = str(tmp_path / 'blocked.pth')
    torch.save({'x': _Blocked(), 'state_dict': {'w': torch.zeros(1)}},
               blocked)
    with pytest.raises(ebw.PickledObjectsError,
                       match=r'getcwd(.|\n)*--allow-pickle'):
        ebw.extract_backbone(blocked, None, log=_quiet)
    # the CLI turns them into a message and exit status 2
    assert ebw.main([str(txt), str(tmp_path / 'o.pth')]) == 2
    assert not osp.exists(tmp_path / 'o.pth')


def test_no_backbone_keys(tmp_path, moco):
    head_only = str(tmp_path / 'head.pth')
    torch.save({'state_dict': {
        k: v for k, v in moco.state_dict().items() if k.startswith('neck.')
    }}, head_only)
    with pytest.raises(ebw.NoBackboneKeysError, match="'backbone.'"):
        ebw.extract_backbone(head_only, None, log=_quiet)
    # a method without a momentum encoder (SimCLR-like checkpoint)
    online_only = str(tmp_path / 'simclr.pth')
    torch.save({'state_dict': {
        k: v for k, v in moco.state_dict().items()
        if k.startswith(('backbone.', 'neck.'))
    }}, online_only)
    with pytest.raises(ebw.NoBackboneKeysError, match='--source online'):
        ebw.extract_backbone(online_only, None, source='momentum',
                             log=_quiet)
    # an explicit prefix
    out = ebw.extract_backbone(online_only, None, prefix='backbone',
                               log=_quiet)
    assert 'conv1.weight' in out['state_dict']


def test_depth_checks(tmp_path, pretrain_ckpt):
    with pytest.raises(ebw.DepthMismatchError, match='ResNet-18'):
        ebw.extract_backbone(pretrain_ckpt, str(tmp_path / 'x.pth'),
                             depth=50, log=_quiet)
    assert not osp.exists(tmp_path / 'x.pth')
    cfg = tmp_path / 'r34.py'
    cfg.write_text(CFG_TEXT.format(depth=34))
    with pytest.raises(ebw.DepthMismatchError, match='ResNet-34'):
        ebw.extract_backbone(pretrain_ckpt, None, config=str(cfg),
                             log=_quiet)
    assert ebw.main([pretrain_ckpt, str(tmp_path / 'y.pth'), '--depth',
                     '50']) == 2
    # the matching depth passes
    ebw.extract_backbone(pretrain_ckpt, None, depth=18, log=_quiet)


def test_depth_from_config_embedded_in_checkpoint(tmp_path, moco):
    path = str(tmp_path / 'ckpt.pth')
    torch.save(dict(state_dict=moco.state_dict(),
                    meta=dict(cfg=CFG_TEXT.format(depth=50))), path)
    with pytest.raises(ebw.DepthMismatchError,
                       match='config stored in the checkpoint'):
        ebw.extract_backbone(path, None, log=_quiet)


def test_verify_reports_keys(tmp_path, pretrain_ckpt):
    logs = []
    res = ebw.extract_backbone(pretrain_ckpt, str(tmp_path / 'v.pth'),
                               verify=True, log=logs.append)
    rep = res['report']
    assert rep['ok'], rep
    assert rep['target'] == 'mmpretrain:ResNet_CIFAR'
    assert rep['missing'] == rep['unexpected'] == rep['mismatched'] == []
    assert rep['forward_shape'][1] == 32
    assert any('OK' in m for m in logs)
    # a target of another width: every conv mismatches -> exit status 1
    cfg = tmp_path / 'wide.py'
    cfg.write_text("model = dict(backbone=dict(type='ResNet_CIFAR', "
                   "depth=18, stem_channels=8, base_channels=8))\n")
    sd = res['state_dict']
    rep = ebw.verify_state_dict(
        sd, ebw.backbone_cfg_from_config(str(cfg)))
    assert not rep['ok'] and rep['mismatched']
    assert ('conv1.weight', (4, 3, 3, 3), (8, 3, 3, 3)) in rep['mismatched']
    assert ebw.main([pretrain_ckpt, str(tmp_path / 'w.pth'), '--config',
                     str(cfg), '--verify']) == 1
    # a shallower target: stage blocks missing -> unexpected keys
    short = ebw.verify_state_dict(
        sd, dict(type='ResNet_CIFAR', depth=18, num_stages=3,
                 out_indices=(2, ), strides=(1, 2, 2), dilations=(1, 1, 1),
                 stem_channels=4, base_channels=4))
    assert not short['ok']
    assert short['unexpected'] and all(
        k.startswith('layer4.') for k in short['unexpected'])


def test_torchvision_style_resnet50():
    import torchvision
    sd = torchvision.models.resnet50(weights=None).state_dict()
    arch = ebw.infer_resnet_arch(sd)
    assert (arch['depth'], arch['block'], arch['stem'],
            arch['stem_channels'], arch['base_channels']) == (
                50, 'Bottleneck', 'imagenet', 64, 64)
    # prefix '' takes the bare dict; the classifier fc is dropped
    bb, used = ebw.select_backbone(sd, prefix='')
    bb, dropped = ebw.drop_non_backbone(bb)
    assert dropped == ['fc.weight', 'fc.bias']
    rep = ebw.verify_state_dict(bb, ebw.default_backbone_cfg(arch),
                                forward=False)
    assert rep['ok'], rep  # torchvision names == MMPretrain names


def test_verify_runs_a_sobel_backbone_on_its_two_channels():
    """DeepCluster's Sobel ResNet (MMSelfSup's released ResNet-50 is one):
    the check's forward pass feeds as many channels as the target takes."""
    from mmpretrain.models import ResNet
    cfg = dict(type='ResNet', depth=18, in_channels=2)
    sd = ResNet(depth=18, in_channels=2).state_dict()
    report = ebw.verify_state_dict(sd, cfg)
    assert report['ok'] and report['forward_shape'] == (1, 512, 2, 2)
