"""Bad configuration: each misconfiguration in docs/bad_config.md is built
here and must fail with an error whose message names the offending key.

``CASES`` is the single source of the table: ``python
tests/test_reliability/test_bad_config.py`` prints the markdown rows of
docs/bad_config.md from the errors actually raised, and
``test_doc_lists_every_case`` keeps the document in sync."""
import os.path as osp
import re

import pytest
import torch
from mmengine.config import Config

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
DOC = osp.join(ROOT, 'docs', 'bad_config.md')
CFG_DIR = osp.join(ROOT, 'configs')


def _build(registry_name, cfg):
    import mmssl_ext.registry as reg
    return getattr(reg, registry_name).build(cfg)


def _model(cfg_file, **overrides):
    """Build ``model`` of a shipped digits config with ``overrides``
    (dotted keys under ``model``)."""
    cfg = Config.fromfile(osp.join(CFG_DIR, cfg_file))
    cfg.merge_from_dict({f'model.{k}': v for k, v in overrides.items()})
    return _build('MODELS', cfg.model)


_INTERCLR = 'interclr/interclr-moco_resnet18-cifar_1xb64-coslr-20e_digits.py'
_CLD = 'cld/cld-npid_resnet18-cifar_1xb64-coslr-20e_digits.py'
_INVP = 'invp/invp_resnet18-cifar_1xb64-coslr-20e_digits.py'
_BSIM = 'bsim/bsim-simclr_resnet18-cifar_1xb64-coslr-20e_digits.py'
_NPID = 'npid/npid_resnet18-cifar_1xb64-coslr-20e_digits.py'
_DC = 'deepcluster/deepcluster-sobel_resnet18-cifar_1xb64-coslr-20e_digits.py'
_COMPOSED = 'composition/simclr-group_resnet18-cifar_1xb64-coslr-20e_digits.py'
_COMPOSED_BYOL = ('composition/'
                  'byol-interimage_resnet18-cifar_1xb64-coslr-20e_digits.py')


def _sample_idx_missing():
    from mmpretrain.structures import DataSample

    from mmssl_ext.utils.dist import get_sample_idx
    get_sample_idx([DataSample()])


def _persistent_without_workers():
    from mmengine.runner import Runner
    Runner.build_dataloader(dict(
        dataset=dict(type='SyntheticImageDataset', num_samples=4,
                     img_size=8, pipeline=[dict(type='PackInputs')]),
        batch_size=2, num_workers=0, persistent_workers=True,
        sampler=dict(type='DefaultSampler', shuffle=False)))


def _dist_without_gpu():
    from mmssl_ext.utils.launch import setup_distributed_cpu
    if torch.cuda.is_available():
        pytest.skip('the CPU-only launcher check needs a machine without GPU')
    setup_distributed_cpu(Config(dict()), 'slurm')


def _knn_k_too_large():
    from mmssl_ext.evaluation.functional.knn_classify import knn_classify
    knn_classify(torch.randn(5, 4), torch.arange(5) % 2, torch.randn(3, 4),
                 num_classes=2, k=10)


def _kmeans_k_too_large():
    from mmssl_ext.models.utils.kmeans import kmeans
    kmeans(torch.randn(6, 4), 10, key='num_clusters')


def _knn_search_k():
    from mmssl_ext.models.utils.knn import knn_search
    knn_search(torch.randn(2, 4), torch.randn(3, 4), k=5)


def _neg_sampling(name):
    from mmssl_ext.models.interclr.neg_sampling import build_neg_sampler
    build_neg_sampler(name, 4, 8, 8)


# (id, component, bad setting, builder, expected exception, message regex)
CASES = [
    # generic
    ('sample_idx', 'any memory-bank algorithm',
     'pipeline without `PackInputs` (no `sample_idx`)', _sample_idx_missing,
     ValueError, r'PackInputs'),
    ('persistent_workers',
     'train_dataloader (Runner API; tools/train.py turns it off for you)',
     '`persistent_workers=True` with `num_workers=0`',
     _persistent_without_workers, ValueError, r'persistent_workers'),
    ('launcher_cpu', 'tools/train.py', '`--launcher slurm` without GPUs',
     _dist_without_gpu, RuntimeError, r"launcher='slurm'"),
    ('knn_k', 'knn_classify / KNNValLoop', '`k` > bank size',
     _knn_k_too_large, ValueError, r'k=10'),
    ('knn_search_k', 'knn_search', '`k` > bank size', _knn_search_k,
     ValueError, r'k=5'),
    ('kmeans_k', 'kmeans (offline clustering)', '`num_clusters` > samples',
     _kmeans_k_too_large, ValueError, r'num_clusters=10'),
    ('load_on_error', 'SafeLoadImageFromFile', "`on_error='ignore'`",
     lambda: _build('TRANSFORMS', dict(type='SafeLoadImageFromFile',
                                       on_error='ignore')),
     ValueError, r'on_error'),
    ('nonfinite_interval', 'NonFiniteLossHook', '`interval=0`',
     lambda: _build('HOOKS', dict(type='NonFiniteLossHook', interval=0)),
     ValueError, r'interval'),
    # memories
    ('memory_momentum', 'FeatureMemory', '`momentum=0`',
     lambda: _build('MODELS', dict(type='FeatureMemory', length=8,
                                   feat_dim=4, momentum=0.)),
     ValueError, r'momentum=0'),
    ('memory_init', 'FeatureMemory', "`init='zeros'`",
     lambda: _build('MODELS', dict(type='FeatureMemory', length=8,
                                   feat_dim=4, init='zeros')),
     ValueError, r'init='),
    ('cluster_memory_k', 'ClusterMemory', '`num_clusters` > `length`',
     lambda: _build('MODELS', dict(type='ClusterMemory', length=8,
                                   feat_dim=4, num_clusters=9)),
     ValueError, r'num_clusters=9'),
    ('memory_length', 'FeatureMemory (checked in before_train)',
     '`length` != training set length',
     lambda: _build('MODELS', dict(type='FeatureMemory', length=8,
                                   feat_dim=4)).check_length(
                                       10, 'model.memory.length'),
     ValueError, r'model\.memory\.length=8'),
    ('queue_length', 'FeatureQueue', '`length=0`',
     lambda: _build('MODELS', dict(type='FeatureQueue', length=0,
                                   feat_dim=4)),
     ValueError, r'length=0'),
    # InterCLR
    ('interclr_queue_len', 'InterCLRMoCo', '`queue_len=0`',
     lambda: _model(_INTERCLR, queue_len=0), ValueError, r'queue_len=0'),
    ('interclr_momentum', 'InterCLRMoCo', '`momentum=1.5`',
     lambda: _model(_INTERCLR, momentum=1.5), ValueError, r'momentum'),
    ('neg_sampling', 'InterCLRMoCo', "`neg_sampling='hardest'`",
     lambda: _neg_sampling('hardest'), ValueError, r'neg_sampling'),
    ('margin_arc', 'MarginContrastiveHead', '`arc_margin=2.0` (> pi/2)',
     lambda: _build('MODELS', dict(type='MarginContrastiveHead',
                                   loss=dict(type='CrossEntropyLoss'),
                                   arc_margin=2.0)),
     ValueError, r'arc_margin'),
    ('cluster_hook_interval', 'OfflineClusterHook', '`interval=0`',
     lambda: _build('HOOKS', dict(type='OfflineClusterHook',
                                  extract_dataloader=dict(), interval=0)),
     ValueError, r'interval=0'),
    ('param_schedule_window', 'ModelParamScheduleHook', '`begin=2, end=1`',
     lambda: _build('HOOKS', dict(type='ModelParamScheduleHook', begin=2,
                                  end=1, params=dict(loss_inter=0))),
     ValueError, r'begin < end'),
    # CLD
    ('cld_temperature', 'NPIDCLD', '`temperature=0`',
     lambda: _model(_CLD, temperature=0), ValueError, r'temperature'),
    ('cld_groups', 'CLDGroupHead', '`num_groups=0`',
     lambda: _build('MODELS', dict(type='CLDGroupHead', num_groups=0)),
     ValueError, r'num_groups'),
    ('cld_grouping', 'CLDGroupHead', "`grouping='spectral'`",
     lambda: _build('MODELS', dict(type='CLDGroupHead', num_groups=2,
                                   grouping='spectral')),
     ValueError, r'grouping'),
    # InvP
    ('invp_ramp_up', 'InvP', "`ramp_up='linear'`",
     lambda: _model(_INVP, ramp_up='linear'), ValueError, r'ramp_up'),
    ('invp_neighbours', 'InvP', '`memory.num_neighbours=0`',
     lambda: _model(_INVP, **{'memory.num_neighbours': 0}), ValueError,
     r'num_neighbours'),
    ('invp_background', 'InvP', '`memory.length` < `loss.n_background`',
     lambda: _model(_INVP, **{'memory.length': 16}), ValueError,
     r'n_background'),
    ('invp_denominator', 'InvPLoss', "`denominator='full'`",
     lambda: _build('MODELS', dict(type='InvPLoss', denominator='full')),
     ValueError, r'denominator'),
    # BSIM
    ('bsim_mixed_view', 'BSIMSimCLR', "`mixture.mixed_view='b'`",
     lambda: _model(_BSIM, **{'mixture.mixed_view': 'b'}), ValueError,
     r'mixture\.mixed_view'),
    ('bsim_mix_mode', 'BSIMSimCLR', "`mixture.mix_mode='blend'`",
     lambda: _model(_BSIM, **{'mixture.mix_mode': 'blend'}), ValueError,
     r'mixture\.mix_mode'),
    ('bsim_beta', 'BSIMSimCLR', '`mixture.beta_weight=-1`',
     lambda: _model(_BSIM, **{'mixture.beta_weight': -1}), ValueError,
     r'mixture\.beta_weight'),
    # composition (ComposedSSL and its branches)
    ('composed_base', 'ComposedSSL', "`base=dict(type='ODC', ...)`",
     lambda: _model(_COMPOSED, base=dict(type='ODC')), TypeError,
     r'two-view frameworks'),
    ('composed_twice', 'ComposedSSL', 'the same branch twice',
     lambda: _model(_COMPOSED, branches=[dict(type='GroupBranch',
                                              num_groups=2)] * 2),
     ValueError, r'branches\[1\]'),
    ('mixture_on_npid', 'MixtureBranch', 'on NPID (no view-scoring loss)',
     lambda: _build('MODELS', dict(
         type='ComposedSSL', branches=[dict(type='MixtureBranch')],
         base=Config.fromfile(osp.join(CFG_DIR, _NPID)).model)),
     ValueError, r'branches\[0\]'),
    ('inter_neck_byol', 'InterImageBranch', '`neck=dict(...)` on BYOL',
     lambda: _model(_COMPOSED_BYOL, **{'branches.0.neck': dict(
         type='CLDNeck', in_channels=128, out_channels=64,
         with_group=False)}), ValueError, r'branches\[0\]\.neck'),
    # ContrastiveCrop
    ('ccrop_alpha', 'ContrastiveCrop', '`alpha=0`',
     lambda: _build('TRANSFORMS', dict(type='ContrastiveCrop', scale=16,
                                       alpha=0)),
     ValueError, r'alpha'),
    ('ccrop_threshold', 'ContrastiveCropHook', '`threshold=1.5`',
     lambda: _build('HOOKS', dict(type='ContrastiveCropHook',
                                  threshold=1.5)),
     ValueError, r'threshold'),
    # NPID / DeepCluster / ODC
    ('npid_neg_num', 'NPID', '`neg_num=0`',
     lambda: _model(_NPID, neg_num=0), ValueError, r'neg_num=0'),
    ('deepcluster_head', 'DeepCluster',
     '`memory.num_clusters` != `head.num_classes`',
     lambda: _model(_DC, **{'memory.num_clusters': 7}), ValueError,
     r'num_classes.*num_clusters'),
    ('offline_cluster_option', 'OfflineClusterHook',
     '`clustering=dict(n_iter=5)` (unknown option)',
     lambda: _build('HOOKS', dict(type='OfflineClusterHook',
                                  extract_dataloader=dict(),
                                  clustering=dict(n_iter=5))),
     ValueError, r'clustering\.n_iter'),
    ('cluster_memory_hook', 'ClusterMemoryHook',
     '`centroids_update_interval=-1`',
     lambda: _build('HOOKS', dict(type='ClusterMemoryHook',
                                  centroids_update_interval=-1)),
     ValueError, r'centroids_update_interval'),
    # data sets
    ('digits_split', 'DigitsDataset', "`split='valid'`",
     lambda: _build('DATASETS', dict(type='DigitsDataset', split='valid')),
     ValueError, r'split'),
    ('digits_val_size', 'DigitsDataset', "`split='val', val_size=4000`",
     lambda: _build('DATASETS', dict(type='DigitsDataset', split='val',
                                     val_size=4000)),
     ValueError, r'val_size'),
    ('digits_val_class', 'DigitsDataset',
     "`split='val', val_size=5` (10 classes)",
     lambda: _build('DATASETS', dict(type='DigitsDataset', split='val',
                                     val_size=5)),
     ValueError, r'val_size=5 leaves class'),
    ('synthetic_size', 'SyntheticImageDataset', '`img_size=0`',
     lambda: _build('DATASETS', dict(type='SyntheticImageDataset',
                                     img_size=0)),
     ValueError, r'img_size'),
]


@pytest.mark.parametrize('case', CASES, ids=[c[0] for c in CASES])
def test_bad_config_names_key(case):
    _, _, _, build, exc, pattern = case
    with pytest.raises(exc) as e:
        build()
    assert re.search(pattern, str(e.value)), str(e.value)


def test_doc_lists_every_case():
    text = open(DOC).read()
    for case in CASES:
        assert f'`{case[0]}`' in text, f'{case[0]} missing from {DOC}'


def _rows():
    """Markdown rows from the errors actually raised (to refresh the doc)."""
    import mmssl_ext  # noqa: F401
    from mmengine.registry import DefaultScope
    DefaultScope.get_instance('bad-config-doc', scope_name='mmssl_ext')
    for cid, comp, bad, build, exc, _ in CASES:
        try:
            build()
            msg = '(no error)'
        except BaseException as e:  # noqa: B902
            msg = f'{type(e).__name__}: {e}'.splitlines()[0]
        msg = msg.replace('|', '\\|')
        if len(msg) > 180:
            msg = msg[:177] + '...'
        print(f'| `{cid}` | {comp} | {bad} | {msg} |')


if __name__ == '__main__':
    _rows()
