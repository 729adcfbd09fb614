"""Write the checkpoints of ``tests/test_models/test_legacy_checkpoints.py``.

They were written by the code of commit 4c9db39 (before the memory contract
moved every piece of per-sample state into memory modules), with::

    git archive 4c9db39 | tar -x -C /tmp/old
    PYTHONPATH=/tmp/old python tests/data/legacy_checkpoints/generate.py

Each file is an mmengine checkpoint (``meta``, ``state_dict``) of a tiny
model after two training steps, plus ``expected``: the losses of a third
forward pass on fixed inputs (``inputs``, ``sample_idx``; global seed 0
before the pass), computed by that code from that state. This script uses
the configuration keys of that commit; it is kept as the record of how the
files were made, not to be run against later code.
"""
import os.path as osp

import torch

import mmssl_ext  # noqa: F401
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper
from mmengine.registry import DefaultScope
from mmpretrain.structures import DataSample

from mmssl_ext.registry import MODELS

HERE = osp.dirname(osp.abspath(__file__))
N = 12
CE = dict(type='CrossEntropyLoss')
BB = dict(type='ResNet_CIFAR', depth=18, stem_channels=2, base_channels=2,
          norm_cfg=dict(type='BN'), zero_init_residual=False)
PRE = dict(type='SelfSupDataPreprocessor', mean=[0.] * 3, std=[1.] * 3)
NECK = dict(type='MoCoV2Neck', in_channels=16, hid_channels=8,
            out_channels=4, with_avg_pool=True)

MODELS_OLD = dict(
    interclr=dict(
        type='InterCLRMoCo', data_preprocessor=PRE, backbone=BB, neck=NECK,
        head=dict(type='MarginContrastiveHead', loss=CE, temperature=0.2),
        memory=dict(type='ClusterMemory', length=N, num_clusters=3,
                    momentum=1.0, min_cluster=2),
        queue_len=10, feat_dim=4, momentum=0.01, neg_num=3,
        semihard_neg_pool_num=6, semieasy_neg_pool_num=6, sampling_seed=1),
    invp=dict(
        type='InvP', data_preprocessor=PRE, backbone=BB, neck=NECK,
        data_len=N, feat_dim=4, num_neighbours=2, ramp_up='none',
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
        type='DeepCluster', data_preprocessor=PRE, num_clusters=3, length=N,
        with_sobel=True, backbone=dict(BB, in_channels=2),
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
        queue_len=8, feat_dim=4, momentum=0.1, mix_mode='mixup'),
)
VIEWS = dict(interclr=2, invp=1, odc=1, deepcluster=1, mococld=3, npid=1,
             bsim_moco=2)


def batch(name, step, b=4):
    g = torch.Generator().manual_seed(100 + step)
    xs = [torch.randn(b, 3, 16, 16, generator=g) for _ in range(VIEWS[name])]
    idx = torch.randperm(N, generator=g)[:b]
    return xs, idx


def samples(idx):
    return [DataSample(metainfo=dict(sample_idx=int(i))) for i in idx]


def prepare(name, model):
    labels = torch.arange(N) % 3
    if name in ('interclr', 'odc'):
        g = torch.Generator().manual_seed(7)
        model.memory.init_memory(torch.randn(N, 4, generator=g), labels)
    if name == 'odc':
        model.set_reweight(power=0.5)
    if name == 'deepcluster':
        model.set_clusters(None, labels)


def main():
    DefaultScope.get_instance('legacy', scope_name='mmssl_ext')
    MessageHub.get_current_instance().update_info('max_iters', 10)
    for name, cfg in MODELS_OLD.items():
        torch.manual_seed(0)
        model = MODELS.build(cfg)
        prepare(name, model)
        optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.05))
        for step in range(2):
            xs, idx = batch(name, step)
            model.train_step(dict(inputs=xs, data_samples=samples(idx)),
                             optim)
            if name == 'odc':
                model.set_reweight(power=0.5)
        state = {k: v.clone() for k, v in model.state_dict().items()}
        xs, idx = batch(name, 2)
        torch.manual_seed(0)
        with torch.no_grad():
            data = model.data_preprocessor(
                dict(inputs=xs, data_samples=samples(idx)), True)
            losses = model.loss(data['inputs'], data['data_samples'])
        expected = {k: float(v) for k, v in losses.items()}
        torch.save(
            dict(meta=dict(written_by='mmssl_ext@4c9db39', config=cfg),
                 state_dict=state, expected=expected, inputs=xs,
                 sample_idx=idx), osp.join(HERE, f'{name}.pth'))
        print(name, expected)


if __name__ == '__main__':
    main()
