"""Checkpoints written before the memory contract still load.

``tests/data/legacy_checkpoints/*.pth`` were written by the code of commit
4c9db39 (see ``generate.py`` there): the state of tiny models after two
training steps, and the losses that code computed from that state on fixed
inputs. Each file is loaded here with mmengine's ``load_checkpoint``
(``strict=True``, the path of ``load_from`` / ``resume``) into a model
built with today's configuration keys; the state must land where it lives
now (the old keys are mapped by the modules) and the same forward pass must
give the same losses."""
import copy
import os.path as osp

import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.registry import DefaultScope
from mmengine.runner.checkpoint import load_checkpoint
from mmpretrain.structures import DataSample

from mmssl_ext.registry import MODELS

HERE = osp.join(osp.dirname(__file__), '..', 'data', 'legacy_checkpoints')
N = 12
CE = dict(type='CrossEntropyLoss')
BB = dict(type='ResNet_CIFAR', depth=18, stem_channels=2, base_channels=2,
          norm_cfg=dict(type='BN'), zero_init_residual=False)
PRE = dict(type='SelfSupDataPreprocessor', mean=[0.] * 3, std=[1.] * 3)
NECK = dict(type='MoCoV2Neck', in_channels=16, hid_channels=8,
            out_channels=4, with_avg_pool=True)

# the configurations of generate.py, in today's keys
MODELS_NOW = dict(
    interclr=dict(
        type='InterCLRMoCo', data_preprocessor=PRE, backbone=BB, neck=NECK,
        head=dict(type='MarginContrastiveHead', loss=CE, temperature=0.2),
        memory=dict(type='ClusterMemory', length=N, num_clusters=3,
                    momentum=1.0, min_cluster=2),
        queue_len=10, feat_dim=4, momentum=0.01, neg_num=3,
        semihard_neg_pool_num=6, semieasy_neg_pool_num=6, sampling_seed=1),
    invp=dict(
        type='InvP', data_preprocessor=PRE, backbone=BB, neck=NECK,
        memory=dict(type='NeighbourMemory', length=N, feat_dim=4,
                    num_neighbours=2, init='uniform'),
        ramp_up='none',
        loss=dict(type='InvPLoss', temperature=0.2, n_background=6,
                  diffusion_layer=2, n_pos=2)),
    odc=dict(
        type='ODC', data_preprocessor=PRE, backbone=BB,
        neck=dict(type='ODCNeck', in_channels=16, hid_channels=8,
                  out_channels=4, dropout=0.),
        head=dict(type='LinearClsHead', num_classes=3, in_channels=4),
        memory=dict(type='ClusterMemory', length=N, feat_dim=4,
                    num_clusters=3, momentum=0.5, min_cluster=2,
                    init='data')),
    deepcluster=dict(
        type='DeepCluster', data_preprocessor=PRE, with_sobel=True,
        memory=dict(type='LabelMemory', length=N, num_clusters=3),
        backbone=dict(BB, in_channels=2),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=3, in_channels=16)),
    mococld=dict(
        type='MoCoCLD', data_preprocessor=PRE, backbone=BB,
        neck=dict(type='CLDNeck', in_channels=16, out_channels=4),
        head=dict(type='ContrastiveHead', loss=CE, temperature=0.2),
        group_head=dict(type='CLDGroupHead', num_groups=2), queue_len=10,
        feat_dim=4, momentum=0.01),
    npid=dict(
        type='NPID', data_preprocessor=PRE, backbone=BB, neg_num=4,
        neck=dict(type='LinearNeck', in_channels=16, out_channels=4,
                  gap_dim=2),
        head=dict(type='ContrastiveHead', loss=CE, temperature=0.07),
        memory=dict(type='FeatureMemory', length=N, feat_dim=4)),
    bsim_moco=dict(
        type='BSIMMoCo', data_preprocessor=PRE, backbone=BB, neck=NECK,
        head=dict(type='ContrastiveHead', loss=CE, temperature=0.2),
        queue_len=8, feat_dim=4, momentum=0.1,
        mixture=dict(mix_mode='mixup')),
)
# old key -> today's key, per file (a key absent here kept its name)
RENAMED = dict(
    interclr={'intra_queue.queue': 'queue.queue',
              'intra_queue.ptr': 'queue.ptr',
              # the inter-image branch of the composition
              **{f'memory.{k}': f'branches.0.memory.{k}'
                 for k in ('bank', 'initialized', 'label_bank', 'centroids',
                           'num_splits')},
              'sampling_seed': 'branches.0.sampling_seed',
              'sampling_step': 'branches.0.sampling_step'},
    invp={'neighbours': 'memory.neighbours'},
    deepcluster={'pseudo_labels': 'memory.labels'},
)
# buffers derived from other state, no longer stored
DROPPED = dict(odc={'loss_weight'}, deepcluster={'loss_weight'})
# diagnostics the old code returned that are now logged elsewhere
NOT_RETURNED = {'cluster_empty', 'cluster_min', 'cluster_max'}


@pytest.fixture(autouse=True)
def _scope():
    DefaultScope.get_instance(f'legacy-{id(_scope)}', scope_name='mmssl_ext')
    MessageHub.get_current_instance().update_info('max_iters', 10)


@pytest.mark.parametrize('name', sorted(MODELS_NOW))
def test_old_checkpoint_loads_and_gives_the_same_losses(name):
    path = osp.join(HERE, f'{name}.pth')
    saved = torch.load(path, map_location='cpu')
    model = MODELS.build(copy.deepcopy(MODELS_NOW[name]))
    load_checkpoint(model, path, map_location='cpu', strict=True)
    state = model.state_dict()
    renamed = RENAMED.get(name, {})
    dropped = DROPPED.get(name, set())
    for old_key, value in saved['state_dict'].items():
        if old_key in dropped:
            assert old_key not in state
            continue
        key = renamed.get(old_key, old_key)
        assert torch.equal(state[key], value), (name, old_key, key)

    samples = [DataSample(metainfo=dict(sample_idx=int(i)))
               for i in saved['sample_idx']]
    torch.manual_seed(0)
    with torch.no_grad():
        data = model.data_preprocessor(
            dict(inputs=saved['inputs'], data_samples=samples), True)
        losses = model.loss(data['inputs'], data['data_samples'])
    expected = saved['expected']
    assert set(losses) == set(expected) - NOT_RETURNED
    for key, value in losses.items():
        assert float(value) == pytest.approx(expected[key], rel=1e-5,
                                             abs=1e-6), (name, key)
