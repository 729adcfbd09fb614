"""Weighted-kNN evaluation of a self-supervised checkpoint.

    python tools/benchmarks/knn_eval.py CONFIG CHECKPOINT
        [--k 200 [20 ...]] [--sigma 0.07] [--topk 1 5]
        [--feature {backbone,neck}] [--backend {auto,torch,faiss}]
        [--chunk-size 1024] [--batch-size N] [--test-split SPLIT]
        [--out RESULT.json] [--work-dir DIR] [--cfg-options k=v ...]
        [--launcher {none,pytorch}]

The labelled *train* split is the bank and the *test* split is classified:
every test image is embedded (``--feature backbone``: the pooled last
backbone stage, the NPID / InvP / CLD protocol), its K nearest bank
features by cosine similarity vote for their label with weight
``exp(sim / sigma)``, and top-1 / top-5 accuracies are reported for every K
(features are extracted once). Defaults K=200, sigma=0.07.

This is a front end to the package's evaluation code: features come from
:func:`mmssl_ext.utils.extract.extract_features` (any sampler, DDP-aware),
the vote from :func:`mmssl_ext.evaluation.functional.knn_classify` (chunked
queries, faiss ``IndexFlatIP`` when installed and ``--backend auto``).

Where the two splits come from, in order:
1. the config's ``test_cfg=dict(type='KNNTestLoop', bank_dataloader=...)``
   with ``test_dataloader`` (every digits recipe has one),
2. ``val_cfg=dict(type='KNNValLoop', ...)`` with ``val_dataloader``,
3. otherwise ``train_dataloader.dataset`` with its ``split`` set to the
   bank (as configured) and to ``--test-split`` for the queries (default
   ``'val'`` for ImageNet, ``'test'`` otherwise), using the config's
   ``test_pipeline`` (or ``[PackInputs]`` / an ImageNet-style
   resize-256-crop-224 when images are loaded from files).

CHECKPOINT (path or URL; ``--sha256`` to check it) is a pre-training
checkpoint (loaded into the whole model) or a backbone-only file written by
``tools/model_converters/extract_backbone_weights.py`` (loaded into
``model.backbone``; only ``--feature backbone`` then makes sense).
"""
import argparse
import copy
import json
import os
import os.path as osp
import sys
from typing import List, Optional, Sequence, Tuple

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
sys.path.insert(0, ROOT)

KNN_LOOPS = ('KNNTestLoop', 'KNNValLoop')


def parse_args(argv: Optional[Sequence[str]] = None):
    from mmengine.config import DictAction
    p = argparse.ArgumentParser(
        description='Weighted kNN accuracy of a self-supervised checkpoint')
    p.add_argument('config', help='pre-training (or any) config')
    p.add_argument('checkpoint', help='checkpoint path or URL')
    p.add_argument('--k', type=int, nargs='+', default=[200],
                   help='number(s) of neighbours (default 200)')
    p.add_argument('--sigma', type=float, default=0.07,
                   help='vote temperature exp(sim / sigma) (default 0.07)')
    p.add_argument('--topk', type=int, nargs='+', default=[1, 5])
    p.add_argument('--feature', choices=['backbone', 'neck'],
                   default='backbone')
    p.add_argument('--backend', choices=['auto', 'torch', 'faiss'],
                   default='auto', help='neighbour search backend')
    p.add_argument('--chunk-size', type=int, default=1024,
                   help='queries per similarity chunk (bounds memory)')
    p.add_argument('--batch-size', type=int, default=None,
                   help='feature-extraction batch size')
    p.add_argument('--test-split', default=None,
                   help="split classified when the config has no kNN loop "
                   "(default 'val' for ImageNet, else 'test')")
    p.add_argument('--sha256', default=None,
                   help='expected SHA-256 (or >= 8-digit prefix) of the '
                   'checkpoint file')
    p.add_argument('--out', default=None, help='write results as JSON')
    p.add_argument('--work-dir', default=None)
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override config settings, key=value')
    p.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                   default='none')
    p.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = p.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def _type_name(cfg) -> str:
    return str((cfg or {}).get('type', '')).split('.')[-1]


def _plain(cfg):
    return cfg.to_dict() if hasattr(cfg, 'to_dict') else copy.deepcopy(cfg)


def _eval_loader(template: dict, dataset: dict,
                 batch_size: Optional[int]) -> dict:
    return dict(
        batch_size=batch_size or template.get('batch_size', 64),
        num_workers=template.get('num_workers', 0),
        persistent_workers=False,
        sampler=dict(type='DefaultSampler', shuffle=False),
        collate_fn=dict(type='default_collate'),
        dataset=dataset)


def default_test_pipeline(train_pipeline: List[dict]) -> List[dict]:
    """Test-time pipeline when the config has no ``test_pipeline``."""
    first = train_pipeline[0] if train_pipeline else {}
    if _type_name(first) == 'LoadImageFromFile':
        return [
            copy.deepcopy(first),
            dict(type='ResizeEdge', scale=256, edge='short',
                 backend='pillow'),
            dict(type='CenterCrop', crop_size=224),
            dict(type='PackInputs'),
        ]
    return [dict(type='PackInputs')]


def resolve_knn_loaders(cfg,
                        test_split: Optional[str] = None,
                        batch_size: Optional[int] = None
                        ) -> Tuple[dict, dict, str]:
    """(bank loader cfg, query loader cfg, where they came from)."""
    for loop_key, loader_key in (('test_cfg', 'test_dataloader'),
                                 ('val_cfg', 'val_dataloader')):
        loop = cfg.get(loop_key) or {}
        if _type_name(loop) in KNN_LOOPS and loop.get('bank_dataloader') \
                and cfg.get(loader_key):
            bank, query = _plain(loop['bank_dataloader']), _plain(
                cfg[loader_key])
            if batch_size:
                bank['batch_size'] = query['batch_size'] = batch_size
            # one feature per sample, in any order: no shuffling, no drops
            for ld in (bank, query):
                ld['drop_last'] = False
            return bank, query, f'{loop_key}.bank_dataloader / {loader_key}'

    train = cfg.get('train_dataloader')
    if not train or not train.get('dataset'):
        raise ValueError(
            'kNN evaluation needs labelled bank and test splits: the config '
            'has no KNNTestLoop / KNNValLoop and no train_dataloader.dataset '
            'to derive them from')
    train = _plain(train)
    ds = train['dataset']
    while 'pipeline' not in ds and isinstance(ds.get('dataset'), dict):
        ds = ds['dataset']  # unwrap RepeatDataset-style wrappers
    if 'split' not in ds:
        raise ValueError(
            f'cannot derive the kNN test split from train_dataloader.dataset '
            f'(type {ds.get("type")!r} has no `split` key): add '
            "test_cfg=dict(type='KNNTestLoop', bank_dataloader=...) and "
            'test_dataloader to the config (see '
            'configs/_base_/datasets/digits_knn.py)')
    if test_split is None:
        test_split = 'val' if _type_name(ds) == 'ImageNet' else 'test'
    pipeline = _plain(cfg.get('test_pipeline') or default_test_pipeline(
        ds.get('pipeline') or []))
    bank_ds = dict(copy.deepcopy(ds), pipeline=pipeline)
    query_ds = dict(copy.deepcopy(ds), split=test_split,
                    pipeline=copy.deepcopy(pipeline))
    return (_eval_loader(train, bank_ds, batch_size),
            _eval_loader(train, query_ds, batch_size),
            f'train_dataloader.dataset (bank split {ds["split"]!r}, test '
            f'split {test_split!r})')


def load_weights(model, checkpoint: str, feature: str,
                 sha256: Optional[str] = None) -> str:
    """Load a pre-training or a backbone-only checkpoint into ``model``;
    returns ``'full'`` or ``'backbone'``."""
    import torch
    from mmssl_ext.utils.hub import load_checkpoint_verified
    ckpt = load_checkpoint_verified(checkpoint, sha256=sha256)
    if not isinstance(ckpt, dict):
        raise ValueError(f'{checkpoint} is not a checkpoint dict')
    sd = ckpt.get('state_dict', ckpt)
    sd = {k[len('module.'):] if k.startswith('module.') else k: v
          for k, v in sd.items() if isinstance(v, torch.Tensor)}
    if any(k.startswith('backbone.') for k in sd):
        target, kind = model, 'full'
    else:
        if feature != 'backbone':
            raise ValueError(
                f'{checkpoint} holds backbone weights only; --feature '
                f'{feature} would use an untrained {feature}')
        target, kind = model.backbone, 'backbone'
    own = target.state_dict()
    mismatched = [k for k in sd if k in own and own[k].shape != sd[k].shape]
    if mismatched:
        raise ValueError(
            f'{checkpoint} does not fit the config\'s model: shape mismatch '
            f'for {mismatched[:5]} (another depth / width?)')
    needed = [k for k in own if (kind == 'backbone' or k.startswith(
        'backbone.') or (feature == 'neck' and k.startswith('neck.')))]
    missing = [k for k in needed if k not in sd]
    if missing:
        raise ValueError(
            f'{checkpoint} lacks {len(missing)} weights the {feature} '
            f'feature needs (e.g. {missing[:5]}); is it a checkpoint of '
            'this config?')
    target.load_state_dict({k: v for k, v in sd.items() if k in own},
                           strict=False)
    return kind


def build_eval_runner(cfg, checkpoint: str, feature: str = 'backbone',
                      sha256: Optional[str] = None,
                      launcher: str = 'none'):
    """A Runner for feature extraction only (the recipe's training,
    validation and custom hooks removed) with ``checkpoint`` loaded.

    Returns ``(runner, model, kind)``; ``model`` is ``runner.model``
    (wrapped under DDP), ``kind`` is ``'full'`` or ``'backbone'``.
    """
    import mmssl_ext  # noqa: F401
    from mmengine.model import is_model_wrapper
    from mmengine.runner import Runner

    from mmssl_ext.utils.launch import setup_distributed_cpu
    cfg = copy.deepcopy(cfg)
    for key in ('train_dataloader', 'train_cfg', 'optim_wrapper',
                'param_scheduler', 'val_dataloader', 'val_cfg',
                'val_evaluator', 'test_dataloader', 'test_cfg',
                'test_evaluator', 'auto_scale_lr'):
        cfg[key] = None
    cfg.custom_hooks = []
    cfg.load_from, cfg.resume = None, False
    cfg.launcher = launcher
    if cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', 'eval')
    setup_distributed_cpu(cfg, launcher)
    runner = Runner.from_cfg(cfg)
    model = runner.model
    ori = model.module if is_model_wrapper(model) else model
    kind = load_weights(ori, checkpoint, feature, sha256)
    return runner, model, kind


def knn_eval(cfg,
             checkpoint: str,
             ks: Sequence[int] = (200, ),
             sigma: float = 0.07,
             topk: Sequence[int] = (1, 5),
             feature: str = 'backbone',
             backend: str = 'auto',
             chunk_size: int = 1024,
             batch_size: Optional[int] = None,
             test_split: Optional[str] = None,
             sha256: Optional[str] = None,
             launcher: str = 'none') -> dict:
    """Run the evaluation for an mmengine ``Config``; returns
    ``{'k=<K>': {'top1': ..., 'top5': ...}, ..., 'meta': {...}}``."""
    import mmssl_ext  # noqa: F401  (registries, checkpoint allow-list)
    from mmengine import dist
    from mmengine.logging import print_log

    from mmssl_ext.engine.runners.knn_loop import _labels_of
    from mmssl_ext.evaluation.functional import knn_classify, topk_accuracy
    from mmssl_ext.utils.extract import extract_features

    if sigma <= 0:
        raise ValueError(f'--sigma must be > 0, got {sigma}')
    if any(k < 1 for k in ks):
        raise ValueError(f'--k values must be >= 1, got {list(ks)}')
    if chunk_size < 1:
        raise ValueError(f'--chunk-size must be >= 1, got {chunk_size}')
    bank_cfg, query_cfg, source = resolve_knn_loaders(cfg, test_split,
                                                      batch_size)
    runner, model, kind = build_eval_runner(cfg, checkpoint, feature,
                                            sha256, launcher)
    print_log(f'kNN: loaded {kind} weights from {checkpoint}; splits from '
              f'{source}', logger='current')

    bank_loader = runner.build_dataloader(bank_cfg, seed=runner.seed)
    query_loader = runner.build_dataloader(query_cfg, seed=runner.seed)
    bank = extract_features(model, bank_loader, feature)
    bank_labels = _labels_of(bank_loader.dataset)
    query = extract_features(model, query_loader, feature)
    labels = _labels_of(query_loader.dataset)
    num_classes = int(max(bank_labels.max(), labels.max())) + 1

    results = {}
    for k in ks:
        kk = min(k, bank.size(0))
        if kk < k:
            print_log(f'kNN: k={k} > bank size {bank.size(0)}; using '
                      f'k={kk}', logger='current')
        scores = knn_classify(bank, bank_labels, query, num_classes, k=kk,
                              sigma=sigma, chunk_size=chunk_size,
                              backend=backend)
        results[f'k={k}'] = topk_accuracy(scores, labels, topk)
    results['meta'] = dict(
        config=cfg.filename, checkpoint=checkpoint, weights=kind,
        feature=feature, sigma=sigma, bank_size=int(bank.size(0)),
        num_queries=int(query.size(0)), feature_dim=int(bank.size(1)),
        num_classes=num_classes, splits=source)
    if dist.is_main_process():
        lines = [f'weighted kNN (sigma={sigma}, {feature} feature, bank '
                 f'{bank.size(0)}, queries {query.size(0)}):']
        for k in ks:
            accs = ', '.join(f'{name} {v:.2f}'
                             for name, v in results[f'k={k}'].items())
            lines.append(f'  k={k:<5d} {accs}')
        print_log('\n'.join(lines), logger='current')
    return results


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    from mmengine.config import Config
    from mmengine import dist
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join(
            './work_dirs', 'knn',
            osp.splitext(osp.basename(args.config))[0])
    results = knn_eval(
        cfg, args.checkpoint, ks=args.k, sigma=args.sigma, topk=args.topk,
        feature=args.feature, backend=args.backend,
        chunk_size=args.chunk_size, batch_size=args.batch_size,
        test_split=args.test_split, sha256=args.sha256,
        launcher=args.launcher)
    if args.out and dist.is_main_process():
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(results, f, indent=2)
    from mmssl_ext.utils.launch import teardown_distributed
    teardown_distributed()
    return results


if __name__ == '__main__':
    main()
