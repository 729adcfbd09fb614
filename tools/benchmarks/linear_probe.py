"""Fast linear probe on cached features (a quick check, not the benchmark
protocol).

    python tools/benchmarks/linear_probe.py CONFIG CHECKPOINT
        [--feature {backbone,neck}] [--C 1.0] [--max-iter 1000]
        [--batch-size N] [--test-split SPLIT] [--out RESULT.json]
        [--cfg-options k=v ...]

Features of the labelled train and test splits (resolved exactly as by
``tools/benchmarks/knn_eval.py``: the config's kNN loop, or its
``train_dataloader`` with the test split) are extracted once with the test
pipeline, standardised with the train statistics, and a multinomial logistic
regression (scikit-learn, L-BFGS, L2 penalty ``1/C``) is fitted on them;
top-1 / top-5 test accuracies are printed. No augmentation and no
fine-tuning, so it takes seconds on the digits where the protocol runs of
``configs/benchmarks/classification/`` (via ``tools/train.py``) take
minutes to days; numbers are therefore not comparable with published linear
probes.
"""
import argparse
import importlib.util
import json
import os
import os.path as osp
import sys
from typing import Optional, Sequence

import numpy as np

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
sys.path.insert(0, ROOT)


def _knn_eval_module():
    spec = importlib.util.spec_from_file_location(
        '_mmssl_knn_eval', osp.join(ROOT, 'tools', 'benchmarks',
                                    'knn_eval.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def fit_linear_probe(train_x: np.ndarray, train_y: np.ndarray,
                     test_x: np.ndarray, test_y: np.ndarray,
                     C: float = 1.0, max_iter: int = 1000,
                     topk: Sequence[int] = (1, 5)) -> dict:
    """Logistic regression on standardised features; accuracies in %."""
    from sklearn.linear_model import LogisticRegression
    if C <= 0:
        raise ValueError(f'--C must be > 0, got {C}')
    mean = train_x.mean(0, keepdims=True)
    std = train_x.std(0, keepdims=True) + 1e-6
    clf = LogisticRegression(C=C, max_iter=max_iter)
    clf.fit((train_x - mean) / std, train_y)
    proba = clf.predict_proba((test_x - mean) / std)
    order = np.argsort(-proba, axis=1)
    pred = clf.classes_[order]
    out = {}
    for k in topk:
        out[f'top{k}'] = float(
            (pred[:, :k] == test_y[:, None]).any(1).mean() * 100)
    out['train_top1'] = float(
        (clf.predict((train_x - mean) / std) == train_y).mean() * 100)
    return out


def linear_probe(cfg, checkpoint: str, feature: str = 'backbone',
                 C: float = 1.0, max_iter: int = 1000,
                 batch_size: Optional[int] = None,
                 test_split: Optional[str] = None,
                 sha256: Optional[str] = None) -> dict:
    from mmengine.logging import print_log

    from mmssl_ext.engine.runners.knn_loop import _labels_of
    from mmssl_ext.utils.extract import extract_features
    ke = _knn_eval_module()
    train_cfg, test_cfg, source = ke.resolve_knn_loaders(
        cfg, test_split, batch_size)
    runner, model, kind = ke.build_eval_runner(cfg, checkpoint, feature,
                                               sha256)
    train_loader = runner.build_dataloader(train_cfg, seed=runner.seed)
    test_loader = runner.build_dataloader(test_cfg, seed=runner.seed)
    tx = extract_features(model, train_loader, feature).cpu().numpy()
    ty = _labels_of(train_loader.dataset).numpy()
    vx = extract_features(model, test_loader, feature).cpu().numpy()
    vy = _labels_of(test_loader.dataset).numpy()
    res = fit_linear_probe(tx, ty, vx, vy, C=C, max_iter=max_iter)
    res['meta'] = dict(checkpoint=checkpoint, weights=kind, feature=feature,
                       C=C, num_train=int(len(ty)), num_test=int(len(vy)),
                       feature_dim=int(tx.shape[1]), splits=source)
    print_log(
        f'linear probe (cached {feature} features, logistic regression '
        f'C={C}): top1 {res["top1"]:.2f}, top5 {res["top5"]:.2f} '
        f'(train top1 {res["train_top1"]:.2f})', logger='current')
    return res


def main(argv: Optional[Sequence[str]] = None) -> dict:
    from mmengine.config import Config, DictAction
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config')
    p.add_argument('checkpoint')
    p.add_argument('--feature', choices=['backbone', 'neck'],
                   default='backbone')
    p.add_argument('--C', type=float, default=1.0,
                   help='inverse L2 regularisation strength')
    p.add_argument('--max-iter', type=int, default=1000)
    p.add_argument('--batch-size', type=int, default=None)
    p.add_argument('--test-split', default=None)
    p.add_argument('--sha256', default=None)
    p.add_argument('--out', default=None)
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = p.parse_args(argv)
    import mmssl_ext  # noqa: F401
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', 'linear_probe',
                                osp.splitext(osp.basename(args.config))[0])
    res = linear_probe(cfg, args.checkpoint, args.feature, args.C,
                       args.max_iter, args.batch_size, args.test_split,
                       args.sha256)
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(res, f, indent=2)
    return res


if __name__ == '__main__':
    main()
