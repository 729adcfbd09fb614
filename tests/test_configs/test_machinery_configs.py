"""Every config of configs/{npid,odc,deepcluster}/ parses; models, hooks,
samplers and transforms build (ImageNet memories shrunk: a 1.28M-row bank
is not needed to check the wiring); the recipes keep MMSelfSup's values."""
import copy
import glob
import os.path as osp

import pytest
from mmengine.config import Config

from mmssl_ext.models.memories import check_memories
from mmssl_ext.registry import DATA_SAMPLERS, HOOKS, MODELS, TRANSFORMS

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
CFGS = sorted(
    glob.glob(osp.join(ROOT, 'configs', 'npid', '*.py')) +
    glob.glob(osp.join(ROOT, 'configs', 'odc', '*.py')) +
    glob.glob(osp.join(ROOT, 'configs', 'deepcluster', '*.py')))


def test_expected_configs_exist():
    names = {osp.basename(c) for c in CFGS}
    assert names == {
        'npid_resnet50_8xb32-steplr-200e_in1k.py',
        'npid_resnet18-cifar_1xb64-coslr-20e_digits.py',
        'odc_resnet50_8xb64-steplr-440e_in1k.py',
        'odc_resnet18-cifar_1xb64-coslr-20e_digits.py',
        'deepcluster-sobel_resnet50_8xb64-steplr-200e_in1k.py',
        'deepcluster-sobel_resnet18-cifar_1xb64-coslr-20e_digits.py',
    }


def _small(model_cfg):
    m = copy.deepcopy(model_cfg)
    if 'memory' in m:
        m['memory']['length'] = 64
        if 'num_clusters' in m['memory']:
            m['memory']['num_clusters'] = 8
            m['head']['num_classes'] = 8
    if 'length' in m:
        m['length'], m['num_clusters'] = 64, 8
        m['head']['num_classes'] = 8
    return m


def _types(obj, out):
    if isinstance(obj, dict):
        if 'type' in obj and isinstance(obj['type'], str):
            out.append(obj['type'])
        for v in obj.values():
            _types(v, out)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _types(v, out)
    return out


@pytest.mark.parametrize('path', CFGS, ids=osp.basename)
def test_config_builds(path):
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmssl_ext'
    digits = path.endswith('_digits.py')
    model = MODELS.build(cfg.model if digits else _small(cfg.model))
    assert type(model).__name__ == cfg.model.type
    for h in cfg.get('custom_hooks', []):
        assert HOOKS.get(h['type']) is not None, h['type']
    assert DATA_SAMPLERS.get(cfg.train_dataloader.sampler.type) is not None
    for t in _types(cfg.train_dataloader.dataset.pipeline, []):
        assert TRANSFORMS.get(t) is not None, t
    # memory / label length = training set length
    n = 4000 if digits else 1281167
    assert cfg.model.memory.length == n
    assert cfg.default_hooks.memory_check.type == 'MemoryCheckHook'
    if digits:
        assert cfg.train_dataloader.batch_size == 64
        assert cfg.train_dataloader.dataset.type == 'DigitsDataset'
        check_memories(model, n)


def test_imagenet_recipes_match_mmselfsup():
    c = Config.fromfile(osp.join(ROOT, 'configs', 'npid',
                                 'npid_resnet50_8xb32-steplr-200e_in1k.py'))
    assert c.model.neg_num == 65536 and c.model.head.temperature == 0.07
    assert c.model.memory.momentum == 0.5 and c.model.memory.feat_dim == 128
    assert c.optim_wrapper.optimizer.lr == 0.03
    assert c.param_scheduler[0].milestones == [120, 160]
    assert c.train_cfg.max_epochs == 200 and c.train_dataloader.batch_size == 32
    c = Config.fromfile(osp.join(ROOT, 'configs', 'odc',
                                 'odc_resnet50_8xb64-steplr-440e_in1k.py'))
    assert c.model.memory.num_clusters == 10000
    assert c.model.memory.min_cluster == 20 and c.model.memory.momentum == 0.5
    assert c.optim_wrapper.optimizer.lr == 0.06
    assert c.optim_wrapper.paramwise_cfg.custom_keys['head'].momentum == 0.
    assert c.train_cfg.max_epochs == 440
    assert c.train_dataloader.sampler.replace
    hooks = {h.type: h for h in c.custom_hooks}
    assert hooks['OfflineClusterHook'].interval is None
    assert hooks['ClusterMemoryHook'].centroids_update_interval == 10
    c = Config.fromfile(osp.join(
        ROOT, 'configs', 'deepcluster',
        'deepcluster-sobel_resnet50_8xb64-steplr-200e_in1k.py'))
    h = c.custom_hooks[0]
    assert h.clustering.pca_dim == 256 and h.interval == 1
    assert h.reset_head and h.uniform_sampling and h.interval == 1
    assert c.model.memory.type == 'LabelMemory'
    assert 'reweight_pow' not in c.model  # uniform class weights
    assert c.model.with_sobel and c.model.backbone.in_channels == 2
    assert c.optim_wrapper.optimizer.lr == 0.1
