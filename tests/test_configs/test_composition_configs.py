"""The composition matrix on the digits (configs/composition/): one recipe
per {MoCo v2, SimCLR, BYOL, SimSiam} x {inter-image, group, mixture} and
the stack (MoCo v2 + inter-image + group + ContrastiveCrop); each is its
framework's digits recipe, inherited untouched, plus branches whose settings
are the same in every cell; all listed in benchmarks/digits_rows.py; every
one builds, passes the config check and runs a training step on a 32x32
batch (the dims of the branches fit the framework's)."""
import copy
import glob
import os.path as osp
import sys
import warnings

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmpretrain.structures import DataSample

from mmssl_ext.registry import HOOKS, MODELS
from mmssl_ext.utils.config_check import find_unknown_arguments

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
FOLDER = osp.join(ROOT, 'configs', 'composition')
CONFIGS = sorted(glob.glob(osp.join(FOLDER, '*.py')))
BRANCHES = Config.fromfile(osp.join(FOLDER, '_base_', 'digits_branches.py'))
TYPES = dict(interimage='InterImageBranch', group='GroupBranch',
             mixture='MixtureBranch')
#: keys a recipe takes from its framework's recipe unchanged
KEPT = ('train_dataloader', 'val_dataloader', 'val_evaluator', 'val_cfg',
        'optim_wrapper', 'param_scheduler', 'train_cfg', 'default_hooks',
        'randomness', 'data_preprocessor', 'default_scope', 'env_cfg')


def _rows():
    sys.path.insert(0, osp.join(ROOT, 'benchmarks'))
    try:
        import digits_rows
    finally:
        sys.path.pop(0)
    return digits_rows


def _base_of(path):
    rows = _rows()
    row = osp.basename(path).split('_')[0]
    base = rows.MATRIX_BASE[row]
    if row.endswith('-ccrop'):  # the stack: ContrastiveCrop-MoCo v2
        return Config.fromfile(osp.join(
            ROOT, 'configs', 'ccrop',
            'ccrop-mocov2_resnet18-cifar_1xb64-coslr-20e_digits.py'))
    return Config.fromfile(osp.join(ROOT, rows.CONFIGS[base]))


def test_matrix_is_complete_and_listed_for_the_benchmark():
    rows = _rows()
    names = {osp.basename(p) for p in CONFIGS}
    assert len(names) == 13
    for fw in ('mocov2', 'simclr', 'byol', 'simsiam'):
        for branch in TYPES:
            assert f'{fw}-{branch}_resnet18-cifar_1xb64-coslr-20e_digits.py' \
                in names
    assert {osp.join(ROOT, p) for p in rows.MATRIX.values()} == set(CONFIGS)
    assert set(rows.MATRIX) == set(rows.MATRIX_BASE)
    assert set(rows.MATRIX_BASE.values()) == {'mocov2', 'simclr', 'byol',
                                              'simsiam'}
    assert not set(rows.MATRIX) & set(rows.CONFIGS)
    assert rows.load('byol-group').model.type == 'ComposedSSL'


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_recipe_is_its_framework_plus_branches(path):
    cfg = Config.fromfile(path)
    base = _base_of(path)
    assert cfg.model.type == 'ComposedSSL'
    want = base.model.to_dict()
    if osp.basename(path).startswith('mocov2-mixture'):
        # on RingMoCo, as BSIMMoCo: the cell is the bsim-mocov2 run
        want['type'] = 'RingMoCo'
    assert cfg.model.base.to_dict() == want
    for key in KEPT:
        assert cfg.get(key) == base.get(key), key
    names = osp.basename(path).split('_')[0].split('-')[1:]
    branches = cfg.model.branches
    assert [b.type for b in branches] == [
        TYPES[n] for n in names if n != 'ccrop'
    ]
    hooks = [h.type for h in cfg.get('custom_hooks', [])]
    base_hooks = [h.type for h in base.get('custom_hooks', [])]
    if 'interimage' in names:
        assert cfg.model.base_loss_weight == 0.75
        assert hooks == base_hooks + ['OfflineClusterHook',
                                      'ClusterMemoryHook']
    else:
        assert 'base_loss_weight' not in cfg.model
        assert hooks == base_hooks
    for branch in branches:  # the same settings in every cell
        branch = copy.deepcopy(branch.to_dict())
        if branch['type'] == 'InterImageBranch':
            memory = branch.pop('memory')
            assert memory.pop('feat_dim') == base.model.neck.out_channels
            assert memory == BRANCHES.inter_image_memory.to_dict()
            assert branch == BRANCHES.inter_image_branch.to_dict()
        elif branch['type'] == 'GroupBranch':
            neck = branch.pop('neck')
            assert neck.pop('in_channels') == base.backbone_out_channels
            want = BRANCHES.group_branch.to_dict()
            assert neck == want.pop('neck')
            assert branch == want
        else:
            assert branch == BRANCHES.mixture_branch.to_dict()
    with open(path) as f:  # a few lines over the framework's recipe
        code = [line for line in f if line.strip() and
                not line.lstrip().startswith('#')]
    assert len(code) <= 20


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config_builds_and_checks(path):
    cfg = Config.fromfile(path)
    assert find_unknown_arguments(cfg) == []
    model = MODELS.build(copy.deepcopy(cfg.model))
    fw = osp.basename(path).split('-')[0]
    if osp.basename(path).startswith('mocov2-mixture'):
        fw = 'mocov2-mixture'  # on RingMoCo: the bsim-mocov2 run
    assert type(model).__name__ == {
        'mocov2': 'ComposedMoCo', 'simclr': 'ComposedSimCLR',
        'byol': 'ComposedBYOL', 'simsiam': 'ComposedSimSiam',
        'mocov2-mixture': 'ComposedRingMoCo'
    }[fw]
    for hook in cfg.get('custom_hooks', []):
        hook = copy.deepcopy(hook)
        hook.pop('priority', None)  # the Runner's
        HOOKS.build(hook)
    if 'ccrop' in path:
        assert cfg.train_dataloader.dataset.type == 'ContrastiveCropDataset'
    # one training step on a batch of 4 (what OfflineClusterHook does
    # first: fill the memory)
    MessageHub.get_current_instance().update_info('max_iters', 10)
    for branch in model.branches:
        if hasattr(branch, 'memory'):
            mem = branch.memory
            mem.init_memory(torch.randn(mem.length, mem.feat_dim),
                            torch.arange(mem.length) % mem.num_clusters)
    torch.manual_seed(0)
    views = [torch.randn(4, 3, 32, 32) for _ in range(2)]
    samples = [DataSample(metainfo=dict(sample_idx=i)) for i in range(4)]
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # K=32 groups > a batch of 4
        losses = model.loss(views, samples)
    loss, _ = model.parse_losses(losses)
    loss.backward()
    assert torch.isfinite(loss)
    assert {k for k in losses if k.startswith('loss')} == {'loss_base'} | {
        dict(InterImageBranch='loss_inter', GroupBranch='loss_group',
             MixtureBranch='loss_bsim')[type(b).__name__]
        for b in model.branches
    }



def _recipe(*parts):
    return Config.fromfile(osp.join(ROOT, 'configs', *parts))


def test_branch_settings_are_the_method_recipes():
    """The branches carry the settings of the method recipes on the digits
    (when a method recipe changes, so must the branch settings)."""
    digits = '_resnet18-cifar_1xb64-coslr-20e_digits.py'
    interclr = _recipe('interclr', 'interclr-moco' + digits)
    m = interclr.model
    memory = m.memory.to_dict()
    memory.pop('feat_dim')
    assert memory == BRANCHES.inter_image_memory.to_dict()
    branch = BRANCHES.inter_image_branch
    assert branch.head == m.inter_head
    for key in ('neg_num', 'neg_sampling', 'semihard_neg_pool_num',
                'semieasy_neg_pool_num'):
        assert branch[key] == m[key], key
    assert branch.loss_weight == m.inter_loss_weight
    assert BRANCHES.inter_image_base_weight == m.intra_loss_weight
    assert BRANCHES.inter_image_hooks == interclr.custom_hooks
    cld = _recipe('cld', 'cld-mocov2' + digits)
    group = BRANCHES.group_branch.to_dict()
    neck = group.pop('neck')
    assert group.pop('type') == 'GroupBranch'
    want = cld.model.group_head.to_dict()
    assert want.pop('type') == 'GroupBranch'
    assert group == want
    want = cld.model.neck.to_dict()
    want.pop('in_channels')
    assert neck == dict(want, with_group=False)
    bsim = _recipe('bsim', 'bsim-simclr' + digits)
    mixture = bsim.model.mixture.to_dict()
    assert BRANCHES.mixture_branch.to_dict() == dict(
        mixture, type='MixtureBranch',
        loss_weight=mixture.pop('beta_weight'))
