"""extract_backbone_weights.py on checkpoints built in the exact layout and
container of each method's release (key names, nesting, DataParallel /
DDP ``module.`` prefixes, pickled optimizer / argparse objects), following
the authors' saving code:

* InvP ``main.py``: ``{'epoch', 'state_dict': nn.DataParallel(ResNet-50 with
  a Linear-ReLU-Linear fc), 'optimizer', 'memory_banks', 'neigh'}``;
* CLD ``main_imagenet_moco_cld.py``: ``{'epoch', 'arch', 'state_dict':
  DDP(MoCo(encoder_q, encoder_k, queue)), 'optimizer': <SGD object>,
  'args': <Namespace>, 'amp'}``, encoders with CLD's ``fc`` (Linear-ReLU),
  ``instDis`` and ``groupDis`` heads;
* CLD ``main_imagenet_infomin_cld.py`` (InfoMin trainer): ``{'model':
  DDP(RGBTriHeads), 'contrast', 'optimizer', 'epoch', 'model_ema':
  RGBTriHeads (not wrapped), 'amp'}``;
* ContrastiveCrop ``DDP_{moco,simclr,byol,simsiam}_ccrop.py``:
  ``{'optimizer_state', '<m>_state': DDP(SyncBN model), 'boxes', 'epoch'}``;
* MMSelfSup 0.x (InterCLR's release): mmcv ``{'meta', 'state_dict'}`` with
  the backbone under ``backbone.`` and ``encoder_q.0.`` and the key encoder
  under ``encoder_k.0.``, saved in the legacy (non-zip) format as
  ``publish_model.py`` does;
* facebookresearch/moco ``main_moco.py``.

Expected weights are read from the modules that were saved, never from the
converter; every tensor is compared bit for bit.
"""
import argparse
import importlib.util
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
import torchvision
from torch import nn

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
TOOL = osp.join(ROOT, 'tools', 'model_converters',
                'extract_backbone_weights.py')
C4_CFG = osp.join(ROOT, 'configs', 'benchmarks', 'mmdetection', 'voc0712',
                  'faster-rcnn_r50-c4_ms-24k_voc0712.py')
FPN_CFG = osp.join(ROOT, 'configs', 'benchmarks', 'mmdetection', 'coco',
                   'mask-rcnn_r50_fpn_ms-1x_coco.py')


def _tool():
    spec = importlib.util.spec_from_file_location('_ebw_rel', TOOL)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


ebw = _tool()


def _quiet(*a, **k):
    pass


def _randomize(module: nn.Module, seed: int) -> nn.Module:
    """Random values in every parameter and buffer (BN statistics too), so
    that any mix-up of tensors is visible."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            if t.is_floating_point():
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            else:
                t.copy_(torch.randint(0, 1000, t.shape, generator=g))
    return module


def _resnet(depth=18, cifar=False, fc=None, seed=0):
    """torchvision ResNet (the authors' ResNets use its module names);
    ``fc=None`` removes the classifier (InfoMin's encoder has none)."""
    net = getattr(torchvision.models, f'resnet{depth}')(weights=None)
    if cifar:  # ContrastiveCrop / CLD CIFAR stem: 3x3 conv, no max-pool
        net.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        net.maxpool = nn.Identity()
    net.fc = fc if fc is not None else nn.Identity()
    return _randomize(net, seed)


def _backbone_sd(net: nn.Module) -> dict:
    """The ResNet part of a torchvision-named encoder (what a backbone file
    must hold)."""
    roots = ('conv1', 'bn1', 'layer1', 'layer2', 'layer3', 'layer4')
    return {k: v for k, v in net.state_dict().items()
            if k.split('.', 1)[0] in roots}


def _assert_same(out_sd: dict, ref: dict):
    assert set(out_sd) == set(ref)
    for k, v in ref.items():
        assert out_sd[k].dtype == v.dtype, k
        assert torch.equal(out_sd[k], v), k


def _convert(path, **kw):
    out = str(path) + '.backbone.pth'
    res = ebw.extract_backbone(str(path), out, log=_quiet, **kw)
    saved = torch.load(out)  # the output loads with the safe loader
    return res, saved


# --------------------------------------------------------------------------
# InvP
# --------------------------------------------------------------------------
def test_invp_imagenet_release(tmp_path):
    net = _resnet(50, fc=nn.Sequential(nn.Linear(2048, 2048),
                                       nn.ReLU(inplace=True),
                                       nn.Linear(2048, 128)), seed=1)
    dp = nn.DataParallel(net)  # main.py: network = nn.DataParallel(network)
    opt = torch.optim.SGD(dp.parameters(), lr=0.03, momentum=0.9,
                          weight_decay=1e-4)
    path = tmp_path / 'checkpoint.pth'
    torch.save({'epoch': 801, 'state_dict': dp.state_dict(),
                'optimizer': opt.state_dict(),
                'memory_banks': torch.randn(16, 128),
                'neigh': torch.randint(0, 16, (16, 4))}, path)
    assert all(k.startswith('module.') for k in dp.state_dict())
    res, saved = _convert(path, depth=50, verify=True)
    _assert_same(saved['state_dict'], _backbone_sd(net))
    assert res['layout'].name == 'dataparallel-resnet'
    assert 'InvP' in res['layout'].origin
    assert sorted(res['dropped']) == ['fc.0.bias', 'fc.0.weight',
                                      'fc.2.bias', 'fc.2.weight']
    assert res['report']['ok'] and res['arch']['depth'] == 50
    assert saved['meta']['epoch'] == 801 and saved['meta']['prefix'] == \
        'module.' and saved['meta']['container'] == 'state_dict'
    # InvP has no momentum encoder
    with pytest.raises(ebw.NoBackboneKeysError, match='--source online'):
        ebw.extract_backbone(str(path), None, source='momentum', log=_quiet)


class _KuangliuBlock(nn.Module):
    """The CIFAR BasicBlock of InvP's / CLD's resnet_cifar.py (kuangliu
    style: the projection branch is called ``shortcut``)."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False),
                nn.BatchNorm2d(cout))

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class _KuangliuResNet18(nn.Module):

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        cin, layers = 64, []
        for i, (c, s) in enumerate(((64, 1), (128, 2), (256, 2), (512, 2))):
            blocks = [_KuangliuBlock(cin, c, s), _KuangliuBlock(c, c, 1)]
            cin = c
            setattr(self, f'layer{i + 1}', nn.Sequential(*blocks))
        self.linear = nn.Linear(512, 128)  # the projection head

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        for i in range(1, 5):
            x = getattr(self, f'layer{i}')(x)
        return x


def test_cifar_shortcut_naming_is_renamed_and_computes_the_same(tmp_path):
    """kuangliu-style CIFAR ResNets (InvP / CLD CIFAR scripts): after the
    shortcut -> downsample rename, MMPretrain's ResNet_CIFAR computes the
    same features as the authors' network."""
    net = _randomize(_KuangliuResNet18(), 3)
    with torch.no_grad():  # keep BN statistics realistic for the forward
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_var.uniform_(0.5, 1.5)
                m.running_mean.uniform_(-0.1, 0.1)
                m.weight.uniform_(0.1, 0.3)
    path = tmp_path / 'ckpt.t7'
    torch.save({'state_dict': nn.DataParallel(net).state_dict(),
                'epoch': 200}, path)
    res, saved = _convert(path, depth=18, verify=True)
    assert res['report']['ok'], res['report']
    sd = saved['state_dict']
    assert not any('shortcut' in k for k in sd)
    assert torch.equal(sd['layer2.0.downsample.0.weight'],
                       net.layer2[0].shortcut[0].weight)
    from mmssl_ext.registry import MODELS
    mm = MODELS.build(dict(type='ResNet_CIFAR', depth=18))
    mm.load_state_dict(sd, strict=True)
    net.eval()
    mm.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(mm(x)[-1], net(x), rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------
# CLD
# --------------------------------------------------------------------------
def _cld_encoder(seed):
    """CLD's models/ResNet.py with two_branch=True, mlp=True: fc =
    Linear-ReLU shared, then the instDis and groupDis heads."""
    net = _resnet(18, fc=nn.Sequential(nn.Linear(512, 512), nn.ReLU()),
                  seed=seed)
    net.instDis = _randomize(nn.Linear(512, 128), seed + 10)
    net.groupDis = _randomize(nn.Linear(512, 128), seed + 11)
    return net


class _MoCo(nn.Module):
    """MoCo builder (facebookresearch/moco, CLD models/builder.py,
    ContrastiveCrop models/moco.py): encoder_q, encoder_k, queue."""

    def __init__(self, encoder_q, encoder_k, dim=128, k=64):
        super().__init__()
        self.encoder_q, self.encoder_k = encoder_q, encoder_k
        for p in self.encoder_k.parameters():
            p.requires_grad = False
        self.register_buffer('queue', torch.randn(dim, k))
        self.register_buffer('queue_ptr', torch.zeros(1, dtype=torch.long))


def _sgd_with_state(model):
    opt = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9,
                          weight_decay=1e-4)
    for p in model.parameters():
        if p.requires_grad:
            p.grad = torch.ones_like(p)
    opt.step()
    return opt


@pytest.fixture(scope='module')
def cld_moco(tmp_path_factory):
    model = _MoCo(_cld_encoder(1), _cld_encoder(2))  # encoder_k != q
    ddp_like = nn.DataParallel(model)  # same 'module.' keys as DDP
    opt = _sgd_with_state(ddp_like)
    args = argparse.Namespace(arch='resnet18', moco_dim=128, moco_k=64,
                              mlp=True, normlinear=True, amp_opt_level='O1')
    path = tmp_path_factory.mktemp('cld') / 'current.pth.tar'
    # main_imagenet_moco_cld.py: 'optimizer' is the optimizer OBJECT
    torch.save({'epoch': 200, 'arch': 'resnet18',
                'state_dict': ddp_like.state_dict(), 'optimizer': opt,
                'args': args,
                'amp': {'loss_scaler0': {'loss_scale': 65536.0,
                                         'unskipped': 0}}}, path)
    return model, str(path)


def test_cld_moco_script_needs_the_pickle_opt_in(cld_moco, tmp_path,
                                                 capsys):
    _, path = cld_moco
    with pytest.raises(ebw.PickledObjectsError) as err:
        ebw.extract_backbone(path, None, log=_quiet)
    msg = str(err.value)
    assert '--allow-pickle' in msg and 'arbitrary code' in msg
    assert 'SGD' in msg or 'Namespace' in msg
    out = str(tmp_path / 'o.pth')
    assert ebw.main([path, out]) == 2
    assert not osp.exists(out)
    assert 'arbitrary code' in capsys.readouterr().err
    # the help text says what the flag risks
    with pytest.raises(SystemExit):
        ebw.parse_args(['--help'])
    assert 'arbitrary code' in ' '.join(capsys.readouterr().out.split())


def test_cld_moco_script_online_and_momentum(cld_moco):
    model, path = cld_moco
    res, saved = _convert(path, allow_pickle=True, depth=18, verify=True)
    assert res['layout'].name == 'moco' and 'CLD' in res['layout'].origin
    _assert_same(saved['state_dict'], _backbone_sd(model.encoder_q))
    assert {'fc.0.weight', 'instDis.weight', 'groupDis.bias'} <= set(
        res['dropped'])
    assert res['report']['ok']
    assert saved['meta']['epoch'] == 200
    res, saved = _convert(path, allow_pickle=True, source='momentum')
    _assert_same(saved['state_dict'], _backbone_sd(model.encoder_k))
    assert saved['meta']['prefix'] == 'module.encoder_k.'


class _InfoMinTriHeads(nn.Module):
    """CLD's infomin/build_backbone.py RGBTriHeads with head='normmlp':
    encoder (ResNet without fc), head (Linear-ReLU), proj1 / proj2
    (NormLinear), head_jig."""

    def __init__(self, seed):
        super().__init__()
        self.encoder = _resnet(18, fc=None, seed=seed)
        self.head = nn.Sequential(nn.Linear(512, 512), nn.ReLU())
        self.proj1 = nn.Sequential(nn.Linear(512, 128, bias=False))
        self.proj2 = nn.Sequential(nn.Linear(512, 128, bias=False))
        self.head_jig = nn.Sequential(nn.Linear(512, 128))


class _RGBMoCoMemory(nn.Module):
    """infomin/mem_moco.py RGBMoCo: a queue buffer."""

    def __init__(self):
        super().__init__()
        self.register_buffer('memory', torch.randn(64, 128))


def test_cld_infomin_trainer_online_and_ema(tmp_path):
    model, model_ema = _InfoMinTriHeads(1), _InfoMinTriHeads(2)
    ddp_like = nn.DataParallel(model)
    opt = _sgd_with_state(ddp_like)
    path = tmp_path / 'ckpt_epoch_100.pth'
    # base_trainer.save(): model is DDP-wrapped, model_ema is not
    torch.save({'model': ddp_like.state_dict(),
                'contrast': _RGBMoCoMemory().state_dict(),
                'optimizer': opt.state_dict(), 'epoch': 100,
                'model_ema': model_ema.state_dict(),
                'amp': {'loss_scaler0': {'loss_scale': 1024.0,
                                         'unskipped': 7}}}, path)
    res, saved = _convert(path, depth=18)  # no pickled objects here
    assert res['layout'].name == 'infomin'
    _assert_same(saved['state_dict'], _backbone_sd(model.encoder))
    assert saved['meta']['prefix'] == 'module.encoder.'
    assert saved['meta']['container'] == 'model'
    assert saved['meta']['epoch'] == 100
    res, saved = _convert(path, source='momentum')
    _assert_same(saved['state_dict'], _backbone_sd(model_ema.encoder))
    assert saved['meta']['container'] == 'model_ema'


# --------------------------------------------------------------------------
# ContrastiveCrop
# --------------------------------------------------------------------------
def _ccrop_model(method):
    """models/{moco,byol,simsiam}.py and DDP_simclr_ccrop.py around the
    CIFAR ResNet-18 of models/resnet.py (maxpool=False)."""
    if method == 'moco':  # MoCo(mlp=True): fc = Linear-ReLU-fc
        mlp = nn.Sequential(nn.Linear(512, 512), nn.ReLU(),
                            nn.Linear(512, 128))
        enc_k_fc = nn.Sequential(nn.Linear(512, 512), nn.ReLU(),
                                 nn.Linear(512, 128))
        model = _MoCo(_resnet(18, True, mlp, 1), _resnet(18, True, enc_k_fc,
                                                         2))
        online, momentum = model.encoder_q, model.encoder_k
    elif method == 'byol':
        def proj():
            return nn.Sequential(nn.Linear(512, 256), nn.BatchNorm1d(256),
                                 nn.ReLU(), nn.Linear(256, 64))
        model = nn.Module()
        model.encoder_q = _resnet(18, True, proj(), 1)
        model.encoder_k = _resnet(18, True, proj(), 2)
        model.predictor = nn.Sequential(nn.Linear(64, 256),
                                        nn.BatchNorm1d(256), nn.ReLU(),
                                        nn.Linear(256, 64))
        online, momentum = model.encoder_q, model.encoder_k
    elif method == 'simclr':
        model = _resnet(18, True, nn.Sequential(
            nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 128)), 1)
        online, momentum = model, None
    else:  # simsiam
        model = nn.Module()
        model.encoder = _resnet(18, True, nn.Sequential(
            nn.Linear(512, 512, bias=False), nn.BatchNorm1d(512),
            nn.ReLU(), nn.Linear(512, 128)), 1)
        model.predictor = nn.Sequential(nn.Linear(128, 32), nn.ReLU(),
                                        nn.Linear(32, 128))
        online, momentum = model.encoder, None
    model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return model, online, momentum


def _authors_boxes(n, seed=0):
    """Boxes as update_box() writes them: (h_min, w_min, h_max, w_max) in
    [0, 1), rows of a heatmap mask over a 32 x 32 input."""
    g = torch.Generator().manual_seed(seed)
    lo = torch.randint(0, 16, (n, 2), generator=g)
    hi = lo + torch.randint(0, 16, (n, 2), generator=g)
    return torch.cat([lo, hi], 1).float() / 32


@pytest.mark.parametrize('method', ['moco', 'simclr', 'byol', 'simsiam'])
def test_contrastivecrop_release(method, tmp_path):
    model, online, momentum = _ccrop_model(method)
    ddp_like = nn.DataParallel(model)
    opt = torch.optim.SGD(ddp_like.parameters(), lr=0.5, momentum=0.9)
    boxes = _authors_boxes(10)
    path = tmp_path / 'last.pth'
    torch.save({'optimizer_state': opt.state_dict(),
                f'{method}_state': ddp_like.state_dict(), 'boxes': boxes,
                'epoch': 500}, path)
    res, saved = _convert(path, verify=True)
    assert res['layout'].name == f'contrastivecrop-{method}'
    assert res['report']['ok'], res['report']
    assert res['arch']['stem'] == 'cifar' and res['arch']['depth'] == 18
    _assert_same(saved['state_dict'], _backbone_sd(online))
    if momentum is not None:
        _, saved = _convert(path, source='momentum')
        _assert_same(saved['state_dict'], _backbone_sd(momentum))
    else:
        with pytest.raises(ebw.NoBackboneKeysError, match='--source online'):
            ebw.extract_backbone(str(path), None, source='momentum',
                                 log=_quiet)


def test_contrastivecrop_boxes_carried_over(tmp_path):
    from mmssl_ext.ccrop import ContrastiveCropDataset
    from mmssl_ext.ccrop.box_store import load_box_file
    model, _, _ = _ccrop_model('simclr')
    boxes = _authors_boxes(12, seed=5)
    boxes[3] = torch.tensor([0., 0., 1., 1.])  # never refreshed
    path = tmp_path / 'epoch_300.pth'
    torch.save({'optimizer_state': {}, 'simclr_state':
                nn.DataParallel(model).state_dict(), 'boxes': boxes,
                'epoch': 300}, path)
    box_file = str(tmp_path / 'boxes.pth')
    logs = []
    ebw.extract_backbone(str(path), None, boxes_out=box_file,
                         log=logs.append)
    assert any('12 ContrastiveCrop boxes (1 still the full image)' in m
               for m in logs)
    state = load_box_file(box_file)
    assert torch.equal(state['boxes'], boxes)
    assert state['active'] is True and state['last_refresh_epoch'] == 300
    # visualize_ccrop_boxes.py --checkpoint reads the file
    spec = importlib.util.spec_from_file_location(
        '_vis_boxes', osp.join(ROOT, 'tools', 'analysis_tools',
                               'visualize_ccrop_boxes.py'))
    vis = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(vis)
    drawn, src = vis.load_boxes(argparse.Namespace(
        compute_boxes=False, checkpoint=box_file), None, None)
    assert torch.equal(drawn, boxes) and 'refreshed after epoch 300' in src
    # the data set of the next run starts from them
    inner = dict(type='SyntheticImageDataset', num_samples=12, num_classes=3,
                 img_size=32, seed=0, pipeline=[])
    ds = ContrastiveCropDataset(inner, boxes_file=box_file)
    assert torch.equal(ds.store.boxes, boxes)
    assert torch.equal(torch.as_tensor(ds.store.get(7)), boxes[7])
    with pytest.raises(ValueError, match='12 rows.*10 samples'):
        ContrastiveCropDataset(dict(inner, num_samples=10),
                               boxes_file=box_file)
    with pytest.raises(ValueError, match='not both'):
        ContrastiveCropDataset(inner, init_box=(0.25, 0.25, 0.75, 0.75),
                               boxes_file=box_file)
    # a checkpoint without boxes
    plain = tmp_path / 'plain.pth'
    torch.save({'state_dict': nn.DataParallel(model).state_dict()}, plain)
    with pytest.raises(ebw.ConversionError, match='no ContrastiveCrop boxes'):
        ebw.extract_backbone(str(plain), None, boxes_out=box_file,
                             log=_quiet)
    # boxes outside [0, 1] are refused
    bad = tmp_path / 'bad.pth'
    torch.save({'simclr_state': nn.DataParallel(model).state_dict(),
                'boxes': boxes * 2}, bad)
    with pytest.raises(ebw.ConversionError, match='normalised'):
        ebw.extract_backbone(str(bad), None, boxes_out=box_file, log=_quiet)


# --------------------------------------------------------------------------
# MMSelfSup 0.x (InterCLR) and facebookresearch/moco
# --------------------------------------------------------------------------
def test_mmselfsup_0x_interclr_release_legacy_format(tmp_path):
    from mmssl_ext.registry import MODELS

    def encoder(seed):
        bb = MODELS.build(dict(type='ResNet', depth=18, stem_channels=8,
                               base_channels=8))
        return _randomize(nn.Sequential(bb, nn.Linear(64, 16)), seed)

    model = nn.Module()  # InterCLRMoCo of MMSelfSup 0.x
    model.encoder_q, model.encoder_k = encoder(1), encoder(2)
    model.backbone, model.neck = model.encoder_q[0], model.encoder_q[1]
    model.register_buffer('queue', torch.randn(16, 32))
    model.register_buffer('queue_ptr', torch.zeros(1, dtype=torch.long))
    sd = model.state_dict()
    assert 'backbone.conv1.weight' in sd and 'encoder_q.0.conv1.weight' in sd
    meta = dict(mmcv_version='1.7.0', time='Tue Dec  6 10:00:00 2022',
                env_info='sys.platform: linux', seed=0,
                config="model = dict(type='InterCLRMoCo', backbone=dict("
                "type='ResNet', depth=18, in_channels=3, out_indices=[4]))",
                exp_name='interclr-moco_resnet50_8xb32-coslr-200e_in1k.py',
                epoch=200, iter=1000)
    path = tmp_path / 'interclr_20221206-00000000.pth'
    # tools/model_converters/publish_model.py: optimizer removed, legacy
    # serialization
    torch.save({'meta': meta, 'state_dict': sd}, path,
               _use_new_zipfile_serialization=False)
    res, saved = _convert(path, depth=18, verify=True)
    assert res['layout'].name == 'mmselfsup-0.x'
    assert res['report']['ok']
    _assert_same(saved['state_dict'], model.encoder_q[0].state_dict())
    assert saved['meta']['epoch'] == 200
    res, saved = _convert(path, source='momentum')
    _assert_same(saved['state_dict'], model.encoder_k[0].state_dict())
    assert saved['meta']['prefix'] == 'encoder_k.0.'


def test_facebookresearch_moco_release(tmp_path):
    model = _MoCo(_resnet(18, fc=nn.Sequential(
        nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 128)), seed=4),
                  _resnet(18, fc=nn.Sequential(
                      nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 128)),
                          seed=5))
    ddp_like = nn.DataParallel(model)
    opt = _sgd_with_state(ddp_like)
    path = tmp_path / 'checkpoint_0199.pth.tar'
    torch.save({'epoch': 200, 'arch': 'resnet18',
                'state_dict': ddp_like.state_dict(),
                'optimizer': opt.state_dict()}, path)
    res, saved = _convert(path)  # optimizer.state_dict(): safe loader
    assert res['layout'].origin == 'facebookresearch/moco main_moco.py'
    _assert_same(saved['state_dict'], _backbone_sd(model.encoder_q))
    _, saved = _convert(path, source='momentum')
    _assert_same(saved['state_dict'], _backbone_sd(model.encoder_k))


def test_share_page_url_is_refused_with_advice():
    url = ('https://drive.google.com/file/d/'
           '1mE1WafTJbEdJav5wF98I_RvTksSxuRpU/view?usp=sharing')
    with pytest.raises(ebw.ConversionError, match='share page'):
        ebw.extract_backbone(url, None, log=_quiet)


# --------------------------------------------------------------------------
# detection transfer: fail before training
# --------------------------------------------------------------------------
@pytest.fixture(scope='module')
def r18_and_r50(tmp_path_factory):
    d = tmp_path_factory.mktemp('det')
    r18, r50 = str(d / 'r18.pth'), str(d / 'r50.pth')
    torch.save({'state_dict': nn.DataParallel(_resnet(18)).state_dict()},
               r18)
    net50 = _resnet(50, seed=7)
    torch.save(net50.state_dict(), r50)
    return r18, r50, net50


def test_target_config_depth_mismatch_stops(r18_and_r50, tmp_path, capsys):
    r18, _, _ = r18_and_r50
    out = str(tmp_path / 'bb.pth')
    for cfg in (C4_CFG, FPN_CFG):
        with pytest.raises(ebw.DepthMismatchError,
                           match=r'ResNet-50 but the checkpoint holds '
                           r'ResNet-18'):
            ebw.extract_backbone(r18, out, target_config=cfg, log=_quiet)
        assert ebw.main([r18, out, '--target-config', cfg]) == 2
        assert osp.basename(cfg) in capsys.readouterr().err
        assert not osp.exists(out)


def test_target_config_keys_checked(r18_and_r50, tmp_path):
    _, r50, net50 = r18_and_r50
    out = str(tmp_path / 'bb.pth')
    res = ebw.extract_backbone(r50, out, target_config=C4_CFG, log=_quiet)
    rep = res['target_report']
    assert rep['ok'], rep
    assert rep['parts'] == ['model.backbone', 'model.roi_head.shared_head']
    # MMPretrain's ResLayerExtraNorm adds a norm after layer4: the detector
    # initialises it, the backbone file cannot have it
    assert set(rep['new_in_target']) == {
        'norm.weight', 'norm.bias', 'norm.running_mean', 'norm.running_var',
        'norm.num_batches_tracked'}
    _assert_same(torch.load(out)['state_dict'], _backbone_sd(net50))
    rep = ebw.extract_backbone(r50, None, target_config=FPN_CFG,
                               log=_quiet)['target_report']
    assert rep['ok'] and rep['new_in_target'] == []
    # a file without some statistics of layer4 cannot fill the C4 shared
    # head: exit 1, and nothing is written
    sd = dict(_backbone_sd(net50))
    gone = ('layer4.2.bn3.running_var', 'layer4.0.downsample.1.weight')
    cut = {k: v for k, v in sd.items() if k not in gone}
    torch.save(cut, tmp_path / 'cut.pth')
    out2 = str(tmp_path / 'bb2.pth')
    assert ebw.main([str(tmp_path / 'cut.pth'), out2, '--target-config',
                     C4_CFG]) == 1
    assert not osp.exists(out2)
    rep = ebw.verify_against_target(cut, C4_CFG)
    assert sorted(rep['missing']) == sorted(gone)
    assert rep['unexpected'] == [] and not rep['ok']
    # keys the detector does not take are unexpected
    rep = ebw.verify_against_target(dict(sd, **{'fc.weight': sd[
        'conv1.weight']}), FPN_CFG)
    assert rep['unexpected'] == ['fc.weight'] and not rep['ok']
    # a CIFAR stem (3x3 conv1) does not fit the detector's 7x7 stem
    sd['conv1.weight'] = torch.zeros(64, 3, 3, 3)
    rep = ebw.verify_against_target(sd, FPN_CFG)
    assert not rep['ok']
    assert rep['mismatched'] == [('conv1.weight', (64, 3, 3, 3),
                                  (64, 3, 7, 7))]


def test_dist_train_script_fails_before_training(r18_and_r50, tmp_path):
    r18, _, _ = r18_and_r50
    work = tmp_path / 'work'
    env = dict(os.environ, PYTHON=sys.executable, WORK_DIR=str(work),
               PYTHONPATH=ROOT)
    for script in ('dist_train_c4.sh', 'dist_train_fpn.sh'):
        cfg = C4_CFG if 'c4' in script else FPN_CFG
        p = subprocess.run(
            ['bash', osp.join(ROOT, 'tools', 'benchmarks', 'mmdetection',
                              script), cfg, r18, '1'],
            capture_output=True, text=True, env=env, cwd=str(tmp_path))
        assert p.returncode == 2, p.stdout + p.stderr
        assert 'ResNet-18' in p.stderr and 'ResNet-50' in p.stderr
        # the converter stopped the script: no training was started
        assert os.listdir(work) == []
