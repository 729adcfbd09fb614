"""Keep the model zoo index (``model-index.yml`` + ``configs/<method>/
metafile.yml``, OpenMMLab / mim format) in step with the config folders.

    python tools/benchmarks/model_zoo.py --write   # (re)write the metafiles
    python tools/benchmarks/model_zoo.py --check   # exit 1 if out of date

Every config of a method folder becomes one ``Models`` row whose metadata
(epochs, total batch size, training data, architecture) is read from the
OpenMMLab file name. No checkpoint has been trained and published for this
package yet, so rows carry ``Results: null`` and no ``Weights``; ``--write``
keeps ``Results``, ``Weights``, ``Weights SHA256`` (checked by
``mmssl_ext.utils.hub.load_checkpoint_verified``) and ``Downstream`` that a
maintainer has filled in by hand, so publishing a checkpoint means editing
its row, not this script.

The checkpoints the methods' authors released are extra rows (names ending
in ``_authors``) generated from :data:`RELEASED`: the URL exactly as the
authors publish it (``Weights`` and ``Converted From``), the numbers the
authors report for it (every ``Results`` entry says where in ``Reported
By``), and the command that converts it into a backbone file
(``Conversion``). ``--check`` fails if a metafile's copy differs.
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
        title='Beyond Single Instance Multi-view Unsupervised '
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
}

DATASETS = {
    'in1k': 'ImageNet-1k',
    'cifar10': 'CIFAR-10',
    'cifar100': 'CIFAR-100',
    'stl10': 'STL-10',
    'tinyimagenet': 'Tiny-ImageNet',
    'digits': 'Digits (MNIST 5k, embedded)',
}

#: hand-maintained fields kept by --write
KEPT = ('Results', 'Weights', 'Weights SHA256', 'Downstream')

CONVERTER = 'python tools/model_converters/extract_backbone_weights.py'
#: Share pages (not files): the user downloads the file in a browser.
DRIVE_NOTE = ('Google Drive page: download the file in a browser (or with '
              'gdown), then convert the local file')
_IN1K_R50 = {'Training Data': 'ImageNet-1k', 'Architecture': ['ResNet-50']}
_INTERCLR_URL = ('https://download.openmmlab.com/mmselfsup/interclr/'
                 'interclr-moco_resnet50_8xb32-coslr-200e_in1k_20221206-'
                 '38f8fdaf.pth')
_CLD_CODE = 'https://github.com/frank-xwang/CLD-UnsupervisedLearning'
_CLD_README = ('authors: frank-xwang/CLD-UnsupervisedLearning README, '
               'ImageNet table ({}), linear evaluation of this checkpoint')


def _drive(file_id: str) -> str:
    return f'https://drive.google.com/file/d/{file_id}/view?usp=sharing'


def _linear(top1: float, source: str) -> dict:
    return {'Task': 'Linear Classification', 'Dataset': 'ImageNet-1k',
            'Metrics': {'Top 1 Accuracy': top1}, 'Reported By': source}


#: Checkpoints released by the methods' authors (method folder -> rows).
#: Only URLs found in the authors' own READMEs / model zoo pages; only
#: numbers the authors report. ContrastiveCrop (xyupeng/ContrastiveCrop) and
#: BSIM (no public code) release no checkpoint.
RELEASED = {
    'interclr': [{
        'Name': 'interclr-moco_resnet50_8xb32-coslr-200e_in1k_authors',
        'Metadata': dict(Epochs=200, **{'Batch Size': 256}, **_IN1K_R50),
        'In Collection': 'InterCLR',
        'Released By': 'MMSelfSup 0.x model zoo (InterCLR\'s official '
        'implementation)',
        'Results': [
            _linear(68.04, 'authors: MMSelfSup 0.x configs/selfsup/interclr/'
                    'README.md (multi-head linear protocol, Feature5)'),
            {'Task': 'SVM Classification', 'Dataset': 'PASCAL VOC2007',
             'Metrics': {'mAP': 85.24},
             'Reported By': 'authors: MMSelfSup 0.x configs/selfsup/interclr/'
             'README.md (VOC07 SVM, Feature5)'}],
        'Weights': _INTERCLR_URL,
        'Weights SHA256': '38f8fdaf',
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
            _linear(71.3, 'authors: paper (arXiv 2010.11694, abstract); the '
                    'README does not say which run the released file is'),
            {'Task': 'Semi-supervised Classification (1% labels)',
             'Dataset': 'ImageNet-1k', 'Metrics': {'Top 5 Accuracy': 78.2},
             'Reported By': 'authors: paper (arXiv 2010.11694, abstract)'}],
        'Weights': _drive('1mE1WafTJbEdJav5wF98I_RvTksSxuRpU'),
        'Download': DRIVE_NOTE,
        'Converted From': {
            'Weights': _drive('1mE1WafTJbEdJav5wF98I_RvTksSxuRpU'),
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
            'Results': [_linear(top1, _CLD_README.format(
                f'MoCov2+CLD, {head}, 200 epochs'))],
            'Weights': _drive(file_id),
            'Download': DRIVE_NOTE,
            'Converted From': {'Weights': _drive(file_id),
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
    ] + [
        {
            'Name': f'cld-infomin-{head.lower()}_resnet50_{epochs}e_in1k_'
            'authors',
            'Metadata': dict(Epochs=epochs, **{'Batch Size': 512},
                             **_IN1K_R50),
            'In Collection': 'CLD',
            'Released By': 'frank-xwang/CLD-UnsupervisedLearning README '
            f'(InfoMin+CLD, {head} projection head; no recipe in this '
            'package)',
            'Results': [_linear(top1, _CLD_README.format(
                f'InfoMin+CLD, {head}, {epochs} epochs'))],
            'Weights': _drive(file_id),
            'Download': DRIVE_NOTE,
            'Converted From': {'Weights': _drive(file_id),
                               'Code': _CLD_CODE},
            'Conversion': f'{CONVERTER} DOWNLOADED.pth '
            f'cld-infomin-{head.lower()}_resnet50_in1k_backbone.pth '
            '--depth 50 --verify',
        } for head, epochs, top1, file_id in (
            ('MLP', 100, 69.5, '1THFDbMdDlC81LJ8ZjNxTIanYZ-Dj238g'),
            ('NormMLP', 200, 71.5, '18hs7B4eQQK03p-dRhvJsVkw34Lm5Sg_x'))
    ],
}

HEADER = """\
# Model zoo of mmssl_ext: {name}. Generated by
# tools/benchmarks/model_zoo.py --write from the configs in this folder.
# No checkpoint of these configs has been trained and published yet:
# `Results: null` and no `Weights` mean exactly that (no numbers are
# claimed). Publishing one = filling its Results / Weights / Weights SHA256
# (kept by --write). Rows named *_authors are checkpoints released by the
# method's authors (URL as published, their reported numbers, the command
# that converts them); they come from RELEASED in the script.
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
        Metadata={'Architecture': list(info['arch'])},
        Paper=dict(Title=info['title'], URL=info['url']))
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


def check(root: str = ROOT) -> List[str]:
    """Problems: configs not listed, listed configs missing, metafiles not
    imported by model-index.yml."""
    problems = []
    index = load_yaml(osp.join(root, 'model-index.yml')) or {}
    imported = set(index.get('Import') or [])
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
