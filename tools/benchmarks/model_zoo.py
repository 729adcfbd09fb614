"""Keep the model zoo index (``model-index.yml`` + ``configs/<method>/
metafile.yml``, OpenMMLab / mim format) in step with the config folders.

    python tools/benchmarks/model_zoo.py --write   # (re)write the metafiles
    python tools/benchmarks/model_zoo.py --check   # exit 1 if out of date

Every config of a method folder (and of ``configs/composition/``) becomes
one ``Models`` row whose metadata (epochs, total batch size, training data,
architecture) is read from the OpenMMLab file name. No checkpoint has been
trained and published for this package yet, so rows carry ``Results: null``
and no ``Weights``; ``--write`` keeps the fields a maintainer fills in by
hand when publishing one (:data:`KEPT`: ``Results``, ``Weights``, ``Weights
SHA256`` or ``Weights SHA256 Prefix`` -- checked by
``mmssl_ext.utils.hub.load_checkpoint_verified`` --, ``Training Log``,
``Downstream``; ``tools/model_converters/publish_model.py`` prints them),
so publishing a checkpoint means editing its row, not this script.

The checkpoints the methods' authors released (rows ``*_authors``) and
MMSelfSup's checkpoints of the NPID, ODC and DeepCluster baselines (rows
``*_mmselfsup-0x`` / ``-1x``) are extra rows generated from
:data:`RELEASED`: ``Weights`` only where the release is a direct file URL
(a Google Drive share page is kept under ``Converted From: Weights`` with
``Download`` saying how to fetch the file), the numbers reported for it
with the protocol and who reported them in the Task name (modelindex and
``mim`` keep nothing else of a result; ``Reported By`` says where exactly)
and the command that converts it into a backbone file (``Conversion``).
``--check`` fails if a metafile's copy differs, and if a config directly
under ``configs/`` is anything but an alias of an indexed recipe
(``configs/interclr_r50.py``: the index lists the recipe it inherits, not
the same model twice).
"""
import argparse
import copy
import glob
import os.path as osp
import re
import sys
from typing import Dict, List, Optional

import yaml

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))

#: method folder -> collection metadata (the papers of configs/*/README.md)
METHODS = {
    'interclr': dict(
        name='InterCLR',
        title='Delving into Inter-Image Invariance for Unsupervised Visual '
        'Representations',
        url='https://arxiv.org/abs/2008.11702',
        arch=['ResNet', 'InterCLR (MoCo v2 + inter-image memory)']),
    'invp': dict(
        name='InvP',
        title='Unsupervised Representation Learning by Invariance '
        'Propagation',
        url='https://arxiv.org/abs/2010.11694',
        arch=['ResNet', 'Invariance Propagation']),
    'cld': dict(
        name='CLD',
        title='Unsupervised Feature Learning by Cross-Level Instance-Group '
        'Discrimination',
        url='https://arxiv.org/abs/2008.03813',
        arch=['ResNet', 'CLD']),
    'bsim': dict(
        name='BSIM',
        # the BMVC 2022 / arXiv v2 title (v1 of 2020: "Beyond Single
        # Instance Multi-view Unsupervised Representation Learning")
        title='A Unified Mixture-View Framework for Unsupervised '
        'Representation Learning',
        url='https://arxiv.org/abs/2011.13356',
        arch=['ResNet', 'BSIM']),
    'ccrop': dict(
        name='ContrastiveCrop',
        title='Crafting Better Contrastive Views for Siamese Representation '
        'Learning',
        url='https://arxiv.org/abs/2202.03278',
        arch=['ResNet', 'ContrastiveCrop']),
    'mocov2': dict(
        name='MoCoV2',
        title='Improved Baselines with Momentum Contrastive Learning',
        url='https://arxiv.org/abs/2003.04297',
        arch=['ResNet', 'MoCo']),
    'npid': dict(
        name='NPID',
        title='Unsupervised Feature Learning via Non-Parametric Instance '
        'Discrimination',
        url='https://arxiv.org/abs/1805.01978',
        arch=['ResNet', 'NPID']),
    'odc': dict(
        name='ODC',
        title='Online Deep Clustering for Unsupervised Representation '
        'Learning',
        url='https://arxiv.org/abs/2006.10645',
        arch=['ResNet', 'ODC']),
    'deepcluster': dict(
        name='DeepCluster',
        title='Deep Clustering for Unsupervised Learning of Visual Features',
        url='https://arxiv.org/abs/1807.05520',
        arch=['ResNet', 'DeepCluster']),
    # not a paper: InterCLR's, CLD's and BSIM's branches (and
    # ContrastiveCrop) attached by configuration to other frameworks
    'composition': dict(
        name='Composition',
        title=None,
        url=None,
        arch=['ResNet', 'ComposedSSL (framework + inter-instance branches)']),
}

DATASETS = {
    'in1k': 'ImageNet-1k',
    'cifar10': 'CIFAR-10',
    'cifar100': 'CIFAR-100',
    'stl10': 'STL-10',
    'tinyimagenet': 'Tiny-ImageNet',
    'digits': 'Digits (MNIST 5k, embedded)',
}

def parse_name(stem: str) -> Dict:
    """Metadata from an OpenMMLab config name
    ``{algo}_{backbone}_{N}xb{B}-{sched}-{E}e_{data}``."""
    meta = {}
    m = re.search(r'(?:^|_)(\d+)xb(\d+)', stem)
    if m:
        meta['Batch Size'] = int(m.group(1)) * int(m.group(2))
    m = re.search(r'-(\d+)e(?:[_-]|$)', stem)
    if m:
        meta['Epochs'] = int(m.group(1))
    data = stem.rsplit('_', 1)[-1].split('-')[0]
    if data in DATASETS:
        meta['Training Data'] = DATASETS[data]
    m = re.search(r'_(resnet\d+(?:-cifar)?)_', stem)
    if m:
        meta['Architecture'] = [m.group(1).replace('resnet', 'ResNet-')
                                .replace('-cifar', ' (CIFAR stem)')]
    return meta


#: hand-maintained fields kept by --write. ``Weights SHA256`` is a full
#: 64-digit digest, ``Weights SHA256 Prefix`` its first 8 or more digits
#: (OpenMMLab's file-name suffix); ``mmssl_ext.utils.hub`` checks either.
KEPT = ('Results', 'Weights', 'Weights SHA256', 'Weights SHA256 Prefix',
        'Training Log', 'Downstream')

CONVERTER = 'python tools/model_converters/extract_backbone_weights.py'
_IN1K_R50 = {'Training Data': 'ImageNet-1k', 'Architecture': ['ResNet-50']}
_MMSELFSUP = 'https://download.openmmlab.com/mmselfsup/'
_INTERCLR_URL = (_MMSELFSUP + 'interclr/interclr-moco_resnet50_8xb32-coslr-'
                 '200e_in1k_20221206-38f8fdaf.pth')
_CLD_CODE = 'https://github.com/frank-xwang/CLD-UnsupervisedLearning'
_CLD_README = ('frank-xwang/CLD-UnsupervisedLearning README, ImageNet table '
               '({}), linear evaluation of this checkpoint')
#: who reported a number, as it appears in the Task name (modelindex and mim
#: keep only Task / Dataset / Metrics of a result) and in ``Reported By``
AUTHORS = 'the authors'
MMSELFSUP = 'MMSelfSup'


def _drive_page(file_id: str) -> str:
    return f'https://drive.google.com/file/d/{file_id}/view?usp=sharing'


def _drive_download(file_id: str) -> str:
    """How to fetch the file behind a Google Drive share page (the page
    itself is HTML, not the checkpoint)."""
    return ('Google Drive share page, not a file: open the page in a browser '
            'and download, or `pip install gdown && gdown '
            f'"https://drive.google.com/uc?id={file_id}"`; then run '
            'Conversion on the downloaded file')


def _result(task: str, protocol: str, by: str, where: str, dataset: str,
            metrics: dict) -> dict:
    """One ``Results`` entry. The protocol and who reported the number are
    part of the Task name, the one place modelindex keeps them
    (``Reported By`` says where exactly); ``mim search`` shows only
    ``<Dataset>/<metric>``, so a metric measured with a protocol other than
    the standard one says which in its name too (:func:`_linear`)."""
    return {'Task': f'{task} ({protocol}; reported by {by})',
            'Dataset': dataset, 'Metrics': dict(metrics),
            'Reported By': where if where.startswith(by) else
            f'{by}: {where}'}


def _linear(top1: float, protocol: str, by: str, where: str,
            label: Optional[str] = None) -> dict:
    """Linear top-1 on ImageNet-1k; ``label`` names a non-standard protocol
    in the metric (``Top 1 Accuracy (multi-head, Feature5)``)."""
    metric = 'Top 1 Accuracy' + (f' ({label})' if label else '')
    return _result('Linear Classification', protocol, by, where,
                   'ImageNet-1k', {metric: top1})


def _voc_svm(m_ap: float, by: str, where: str) -> dict:
    return _result('SVM Classification', 'VOC07 SVM on Feature5', by, where,
                   'PASCAL VOC2007', {'mAP (SVM on Feature5)': m_ap})


def _mmselfsup_row(name: str, url: str, branch: str, method: str,
                   results: list, config: str, log: Optional[str] = None,
                   conversion_args: str = '--depth 50 --verify') -> dict:
    row = {
        'Name': name,
        'Metadata': dict(parse_name(osp.splitext(osp.basename(config))[0])),
        'In Collection': METHODS[method]['name'],
        'Released By': f'MMSelfSup {branch} model zoo (MMSelfSup\'s '
        'implementation, not the paper\'s authors)',
        'Results': results,
        'Weights': url,
        'Weights SHA256 Prefix': url.rsplit('-', 1)[-1].split('.')[0],
    }
    if log:
        row['Training Log'] = log
    row.update({
        'Converted From': {
            'Weights': url,
            'Code': 'https://github.com/open-mmlab/mmselfsup/tree/'
            f'{branch}/configs/selfsup/{method}'},
        'Conversion': f'{CONVERTER} {url} {method}_resnet50_in1k_backbone.pth'
        f' {conversion_args}',
        'Config': config,
    })
    return row


_NPID_CFG = 'configs/npid/npid_resnet50_8xb32-steplr-200e_in1k.py'
_ODC_CFG = 'configs/odc/odc_resnet50_8xb64-steplr-440e_in1k.py'
_DC_CFG = ('configs/deepcluster/deepcluster-sobel_resnet50_8xb64-steplr-'
           '200e_in1k.py')
_0X = 'MMSelfSup 0.x configs/selfsup/{}/README.md ({})'
_AVGPOOL = 'MoCo protocol, AvgPool, 100 epochs'
_MHEAD = 'multi-head protocol, Feature5'
_MHEAD_LABEL = 'multi-head, Feature5'

#: Checkpoints released by the methods' authors (rows ``*_authors``) and
#: MMSelfSup's checkpoints of the baselines (rows ``*_mmselfsup-0x`` /
#: ``-1x``), method folder -> rows. Only URLs found in the authors' own
#: READMEs / model zoo pages; only numbers they report, each marked with who
#: reported it. ContrastiveCrop (xyupeng/ContrastiveCrop) and BSIM (no
#: public code) release no checkpoint. A ``Weights`` is always a direct
#: file URL; a Google Drive share page is kept as provenance under
#: ``Converted From: Weights`` with ``Download`` saying how to fetch it.
RELEASED = {
    'interclr': [{
        'Name': 'interclr-moco_resnet50_8xb32-coslr-200e_in1k_authors',
        'Metadata': dict(Epochs=200, **{'Batch Size': 256}, **_IN1K_R50),
        'In Collection': 'InterCLR',
        'Released By': 'MMSelfSup 0.x model zoo (InterCLR\'s official '
        'implementation, by the authors)',
        'Results': [
            _linear(68.04, _MHEAD, AUTHORS,
                    _0X.format('interclr', 'ImageNet linear evaluation, '
                               'Feature5'), label=_MHEAD_LABEL),
            _voc_svm(85.24, AUTHORS,
                     _0X.format('interclr', 'VOC SVM, best layer feature5'))],
        'Weights': _INTERCLR_URL,
        'Weights SHA256 Prefix': '38f8fdaf',
        'Training Log': _MMSELFSUP + 'interclr/interclr-moco_resnet50_'
        '8xb32-coslr-200e_in1k_20221103_085100.log.json',
        'Converted From': {
            'Weights': _INTERCLR_URL,
            'Code': 'https://github.com/open-mmlab/mmselfsup/tree/0.x/'
            'configs/selfsup/interclr'},
        'Conversion': f'{CONVERTER} {_INTERCLR_URL} '
        'interclr-moco_resnet50_in1k_backbone.pth --depth 50 --verify',
        'Config': 'configs/interclr/'
        'interclr-moco_resnet50_8xb32-coslr-200e_in1k.py',
    }],
    'invp': [{
        'Name': 'invp_resnet50_800e_in1k_authors',
        'Metadata': dict(Epochs=800, **{'Batch Size': 128}, **_IN1K_R50),
        'In Collection': 'InvP',
        'Released By': 'WangFeng18/InvariancePropagation README',
        'Results': [
            _linear(71.3, 'the paper\'s linear protocol', AUTHORS,
                    'paper (arXiv 2010.11694, abstract); the README does not '
                    'say which run the released file is'),
            _result('Semi-supervised Classification', '1% labels, '
                    'fine-tuned', AUTHORS, 'paper (arXiv 2010.11694, '
                    'abstract)', 'ImageNet-1k',
                    {'Top 5 Accuracy (1% labels)': 78.2})],
        'Download': _drive_download('1mE1WafTJbEdJav5wF98I_RvTksSxuRpU'),
        'Converted From': {
            'Weights': _drive_page('1mE1WafTJbEdJav5wF98I_RvTksSxuRpU'),
            'Code': 'https://github.com/WangFeng18/InvariancePropagation'},
        'Conversion': f'{CONVERTER} DOWNLOADED.pth '
        'invp_resnet50_in1k_backbone.pth --depth 50 --verify',
        'Config': 'configs/invp/invp_resnet50_8xb16-coslr-800e_in1k.py',
    }],
    'cld': [
        {
            'Name': f'cld-mocov2-{head.lower()}_resnet50_200e_in1k_authors',
            'Metadata': dict(Epochs=200, **{'Batch Size': 512}, **_IN1K_R50),
            'In Collection': 'CLD',
            'Released By': 'frank-xwang/CLD-UnsupervisedLearning README '
            f'(MoCov2+CLD, {head} projection head)',
            'Results': [_linear(
                top1, 'SGD, linear-decay schedule', AUTHORS,
                _CLD_README.format(f'MoCov2+CLD, {head}, 200 epochs'))],
            'Download': _drive_download(file_id),
            'Converted From': {'Weights': _drive_page(file_id),
                               'Code': _CLD_CODE},
            # main_imagenet_moco_cld.py pickles the SGD object and args
            'Conversion': f'{CONVERTER} DOWNLOADED.pth.tar '
            f'cld-mocov2-{head.lower()}_resnet50_in1k_backbone.pth '
            '--allow-pickle --depth 50 --verify',
            'Config': 'configs/cld/cld-mocov2_resnet50_8xb64-coslr-200e_'
            'in1k.py',
        } for head, top1, file_id in (
            ('MLP', 69.2, '1LAd0YMaRLZtqjDTukf1OKyFTrGUt9YgP'),
            ('NormMLP', 70.0, '1Jc2_rJiFZF1PzNB7UPyzhzpIv_NfUuls'))
    ],
    # CLD's InfoMin + CLD checkpoints are not rows: this package has no
    # InfoMin recipe, and mim / mmengine expect a Config in every row
    # (mmengine warns on each `mmssl_ext::` inheritance otherwise); they are
    # listed, with the conversion command, in docs/pretrained_weights.md.
    'npid': [
        _mmselfsup_row(
            'npid_resnet50_8xb32-steplr-200e_in1k_mmselfsup-0x',
            _MMSELFSUP + 'npid/npid_resnet50_8xb32-steplr-200e_in1k_'
            '20220225-5fbbda2a.pth', '0.x', 'npid', [
                _linear(57.97, _AVGPOOL, MMSELFSUP, _0X.format(
                    'npid', 'ImageNet linear evaluation, AvgPool; also its '
                    'metafile.yml; docs/en/model_zoo.md lists 58.97')),
                _linear(58.41, _MHEAD, MMSELFSUP, _0X.format(
                    'npid', 'ImageNet linear evaluation, Feature5'),
                    label=_MHEAD_LABEL),
                _voc_svm(76.75, MMSELFSUP, _0X.format(
                    'npid', 'VOC SVM, best layer feature5'))],
            _NPID_CFG, log=_MMSELFSUP + 'npid/npid_resnet50_8xb32-steplr-'
            '200e_in1k_20220215_185513.log.json'),
        _mmselfsup_row(
            'npid_resnet50_8xb32-steplr-200e_in1k_mmselfsup-1x',
            _MMSELFSUP + '1.x/npid/npid_resnet50_8xb32-steplr-200e_in1k/'
            'npid_resnet50_8xb32-steplr-200e_in1k_20220825-a67c5440.pth',
            '1.x', 'npid', [
                _linear(58.3, 'resnet50_linear-8xb32-steplr-100e_in1k, '
                        'AvgPool', MMSELFSUP, 'MMSelfSup 1.x configs/selfsup/'
                        'npid/metafile.yml (Downstream) and README.md')],
            _NPID_CFG, log=_MMSELFSUP + '1.x/npid/npid_resnet50_8xb32-steplr-'
            '200e_in1k/npid_resnet50_8xb32-steplr-200e_in1k_20220725_'
            '161221.json'),
    ],
    'odc': [
        _mmselfsup_row(
            'odc_resnet50_8xb64-steplr-440e_in1k_mmselfsup-0x',
            _MMSELFSUP + 'odc/odc_resnet50_8xb64-steplr-440e_in1k_20220225-'
            'a755d9c0.pth', '0.x', 'odc', [
                _linear(53.43, _AVGPOOL, MMSELFSUP, 'MMSelfSup 0.x '
                        'configs/selfsup/odc/metafile.yml and docs/en/'
                        'model_zoo.md (its README\'s AvgPool column: 53.42)'),
                _linear(57.70, _MHEAD, MMSELFSUP, _0X.format(
                    'odc', 'ImageNet linear evaluation, Feature5'),
                    label=_MHEAD_LABEL),
                _voc_svm(78.42, MMSELFSUP, _0X.format(
                    'odc', 'VOC SVM, best layer feature5'))],
            _ODC_CFG, log=_MMSELFSUP + 'odc/odc_resnet50_8xb64-steplr-440e_'
            'in1k_20220215_235245.log.json'),
    ],
    'deepcluster': [
        # conv1 of the Sobel model takes 2 channels: the backbone to verify
        # against comes from this package's recipe, not --depth
        _mmselfsup_row(
            'deepcluster-sobel_resnet50_8xb64-steplr-200e_in1k_mmselfsup-0x',
            _MMSELFSUP + 'deepcluster/deepcluster-sobel_resnet50_8xb64-'
            'steplr-200e_in1k-bb8681e2.pth', '0.x', 'deepcluster', [
                _linear(46.92, _AVGPOOL, MMSELFSUP, _0X.format(
                    'deepcluster', 'ImageNet linear evaluation, AvgPool; '
                    'also its metafile.yml')),
                _linear(51.68, _MHEAD, MMSELFSUP, _0X.format(
                    'deepcluster', 'ImageNet linear evaluation, Feature5'),
                    label=_MHEAD_LABEL),
                _voc_svm(74.26, MMSELFSUP, _0X.format(
                    'deepcluster', 'VOC SVM, best layer feature5'))],
            _DC_CFG, conversion_args=f'--config {_DC_CFG} --verify'),
    ],
}

#: Config files directly under configs/ are one-line entry points (README's
#: ``tools/dist_train.sh configs/interclr_r50.py 8``) that only inherit an
#: indexed recipe: the index lists the recipe, not the alias (it would be
#: the same model twice); ``check`` verifies that each alias is one.
ALIAS_DIR = 'configs'

HEADER = """\
# Model zoo of mmssl_ext: {name}. Generated by
# tools/benchmarks/model_zoo.py --write from the configs in this folder.
# No checkpoint of these configs has been trained and published yet:
# `Results: null` and no `Weights` mean exactly that (no numbers are
# claimed). Publishing one = filling its Results / Weights / Weights SHA256
# (or Weights SHA256 Prefix) / Training Log (kept by --write;
# tools/model_converters/publish_model.py prints them). Rows named *_authors
# are checkpoints released by the method's authors, rows *_mmselfsup-0x /
# -1x MMSelfSup's checkpoints of the baselines: URL as published, their
# numbers (each Task says the protocol and who reported it), the command
# that converts them; they come from RELEASED in the script.
# `Training Memory (GB)` of the ImageNet rows is per GPU at the recipe's
# batch, ESTIMATED on the CPU (tools/analysis_tools/estimate_gpu_memory.py:
# live tensor bytes of two training steps, linear in the batch; no CUDA
# context or cuDNN workspace), not measured on a GPU; see
# docs/benchmarks.md.
"""

#: CPU estimates of the GPU memory (tools/analysis_tools/
#: estimate_gpu_memory.py --out ...)
MEMORY_ESTIMATES = osp.join('tools', 'gpu_check', 'memory_estimates.json')


def memory_metadata(cfg: str, root: str = ROOT) -> Dict:
    """``Training Resources`` and ``Training Memory (GB)`` (per GPU,
    estimated) of a config that has a CPU estimate; empty otherwise."""
    import json
    path = osp.join(root, MEMORY_ESTIMATES)
    if not osp.isfile(path):
        return {}
    with open(path) as f:
        rows = {r['config']: r for r in json.load(f)['recipes']}
    r = rows.get(cfg)
    m = re.search(r'(?:^|_)(\d+)xb(\d+)', osp.basename(cfg))
    if r is None or m is None:
        return {}
    return {'Training Resources': f'{m.group(1)}x GPUs',
            'Training Memory (GB)': round(r['peak_gib'] * 2**30 / 1e9, 1)}


def method_configs(method: str, root: str = ROOT) -> List[str]:
    """Configs of a method folder (relative to ``root``), including a
    ``benchmarks/`` sub-folder, excluding ``_base_``."""
    folder = osp.join(root, 'configs', method)
    files = glob.glob(osp.join(folder, '*.py')) + glob.glob(
        osp.join(folder, 'benchmarks', '*.py'))
    return sorted(osp.relpath(f, root) for f in files)


def load_yaml(path: str) -> Optional[dict]:
    if not osp.isfile(path):
        return None
    with open(path) as f:
        return yaml.safe_load(f)


def build_metafile(method: str, root: str = ROOT) -> dict:
    info = METHODS[method]
    old = load_yaml(osp.join(root, 'configs', method, 'metafile.yml')) or {}
    old_rows = {r.get('Name'): r for r in old.get('Models') or []}
    collection = dict(
        Name=info['name'],
        Metadata={'Architecture': list(info['arch'])})
    if info['url']:
        collection['Paper'] = dict(Title=info['title'], URL=info['url'])
    readme = osp.join('configs', method, 'README.md')
    if osp.isfile(osp.join(root, readme)):
        collection['README'] = readme
    rows = []
    for cfg in method_configs(method, root):
        stem = osp.splitext(osp.basename(cfg))[0]
        row = {'Name': stem,
               'Metadata': dict(parse_name(stem), **memory_metadata(cfg,
                                                                   root)),
               'In Collection': info['name'], 'Results': None}
        prev = old_rows.get(stem, {})
        for key in KEPT:
            if prev.get(key) is not None:
                row[key] = prev[key]
        row['Config'] = cfg
        rows.append(row)
    rows += copy.deepcopy(RELEASED.get(method, []))
    return {'Collections': [collection], 'Models': rows}


class _NoAliasDumper(yaml.SafeDumper):
    """Write shared values out in full (no ``&id001`` anchors)."""

    def ignore_aliases(self, data):
        return True


def dump_metafile(meta: dict, name: str) -> str:
    return HEADER.format(name=name) + '\n' + yaml.dump(
        meta, Dumper=_NoAliasDumper, sort_keys=False,
        default_flow_style=False, width=79)


def present_methods(root: str = ROOT) -> List[str]:
    return [m for m in METHODS if method_configs(m, root)]


def model_index(methods: List[str]) -> str:
    lines = ['# OpenMMLab model index of mmssl_ext (read by mim / '
             'modelindex);', '# regenerate with tools/benchmarks/'
             'model_zoo.py --write', 'Import:']
    lines += [f'  - configs/{m}/metafile.yml' for m in methods]
    return '\n'.join(lines) + '\n'


def _alias_bases(path: str) -> Optional[List[str]]:
    """The ``_base_`` list of a config that assigns nothing else (an
    alias), or None."""
    import ast
    with open(path, encoding='utf-8') as f:
        tree = ast.parse(f.read())
    names = [t.id for node in tree.body if isinstance(node, ast.Assign)
             for t in node.targets if isinstance(t, ast.Name)]
    others = [n for n in tree.body if not isinstance(n, ast.Assign)
              and not (isinstance(n, ast.Expr)
                       and isinstance(n.value, ast.Constant))]
    if names != ['_base_'] or others:
        return None
    value = ast.literal_eval(tree.body[[isinstance(n, ast.Assign)
                                        for n in tree.body].index(True)]
                             .value)
    return [value] if isinstance(value, str) else list(value)


def check(root: str = ROOT) -> List[str]:
    """Problems: configs not listed, listed configs missing, metafiles not
    imported by model-index.yml, released rows out of step with
    :data:`RELEASED`, configs directly under ``configs/`` that are not
    aliases of an indexed recipe."""
    problems = []
    index = load_yaml(osp.join(root, 'model-index.yml')) or {}
    imported = set(index.get('Import') or [])
    indexed = set()
    for m in present_methods(root):
        path = f'configs/{m}/metafile.yml'
        if path not in imported:
            problems.append(f'model-index.yml does not import {path}')
        meta = load_yaml(osp.join(root, path))
        if meta is None:
            problems.append(f'{path} is missing')
            continue
        rows = meta.get('Models') or []
        released = {r['Name']: r for r in RELEASED.get(m, [])}
        listed = {r['Config'] for r in rows if r.get('Name') not in released}
        indexed |= listed
        actual = set(method_configs(m, root))
        for c in sorted(actual - listed):
            problems.append(f'{path} does not list {c}')
        for c in sorted(listed - actual):
            problems.append(f'{path} lists {c}, which does not exist')
        have = {r.get('Name'): r for r in rows}
        for name, row in released.items():
            if have.get(name) != row:
                problems.append(f'{path}: released row {name} is missing or '
                                'differs from RELEASED')
    for path in sorted(imported):
        if not osp.isfile(osp.join(root, path)):
            problems.append(f'model-index.yml imports missing {path}')
    for cfg in sorted(glob.glob(osp.join(root, ALIAS_DIR, '*.py'))):
        rel = osp.relpath(cfg, root)
        bases = _alias_bases(cfg)
        targets = [osp.relpath(osp.normpath(osp.join(osp.dirname(cfg), b)),
                               root) for b in bases or []]
        if not bases or not all(t in indexed for t in targets):
            problems.append(f'{rel} is neither in a method folder nor an '
                            'alias (only `_base_ = [...]`) of an indexed '
                            'recipe')
    return problems


def write(root: str = ROOT) -> List[str]:
    methods = present_methods(root)
    for m in methods:
        text = dump_metafile(build_metafile(m, root), METHODS[m]['name'])
        with open(osp.join(root, 'configs', m, 'metafile.yml'), 'w') as f:
            f.write(text)
    with open(osp.join(root, 'model-index.yml'), 'w') as f:
        f.write(model_index(methods))
    return methods


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument('--write', action='store_true')
    g.add_argument('--check', action='store_true')
    args = p.parse_args(argv)
    if args.write:
        methods = write()
        print(f'wrote model-index.yml and metafiles of {methods}')
        return 0
    problems = check()
    for line in problems:
        print(line)
    print('model zoo index up to date' if not problems else
          f'{len(problems)} problem(s); run tools/benchmarks/model_zoo.py '
          '--write')
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
