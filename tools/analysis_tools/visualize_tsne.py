"""t-SNE of embedded features, coloured by true label or pseudo-label.

    python tools/analysis_tools/visualize_tsne.py CONFIG CHECKPOINT
        [--split {test,train}] [--feature {backbone,neck}]
        [--color-by {label,pseudo}] [--max-samples 2000]
        [--perplexity 30] [--seed 0] [--out tsne.png]
        [--save-embedding emb.npz] [--cfg-options k=v ...]

The images of a labelled split (``test``: the kNN test split, ``train``:
the kNN bank / training images with the test pipeline; both resolved as in
``tools/benchmarks/knn_eval.py``) are embedded by the checkpoint's backbone
(pooled last stage) or neck, a random subset of ``--max-samples`` is
projected to 2-D with scikit-learn's t-SNE (PCA initialisation), and the
points are drawn coloured by

* ``label``: the ground-truth class, or
* ``pseudo``: the pseudo-label the model holds for each training sample
  (the labels of the pseudo-label memory of clustering methods: ODC,
  DeepCluster, InterCLR); only for ``--split train``.

CHECKPOINT: a pre-training checkpoint or a backbone-only file (path or URL).

Nothing is written but ``--out`` (default ``<config>_tsne_<split>_<color-by>
.png`` in the current directory) and ``--save-embedding``: the Runner that
loads the model logs into a temporary directory, removed at the end.
"""
import argparse
import copy
import importlib.util
import os
import os.path as osp
import sys
from typing import Optional, Sequence

import numpy as np

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
sys.path.insert(0, ROOT)


def _knn_eval_module():
    path = osp.join(ROOT, 'tools', 'benchmarks', 'knn_eval.py')
    spec = importlib.util.spec_from_file_location('_mmssl_knn_eval', path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def parse_args(argv: Optional[Sequence[str]] = None):
    from mmengine.config import DictAction
    p = argparse.ArgumentParser(description='t-SNE of embedded features')
    p.add_argument('config')
    p.add_argument('checkpoint')
    p.add_argument('--split', choices=['test', 'train'], default='test')
    p.add_argument('--feature', choices=['backbone', 'neck'],
                   default='backbone')
    p.add_argument('--color-by', choices=['label', 'pseudo'],
                   default='label')
    p.add_argument('--max-samples', type=int, default=2000)
    p.add_argument('--perplexity', type=float, default=30.)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--batch-size', type=int, default=None)
    p.add_argument('--test-split', default=None,
                   help='see knn_eval.py (configs without a kNN loop)')
    p.add_argument('--out', default=None,
                   help='PNG to write (default: <config>_tsne_<split>_'
                   '<color-by>.png in the current directory); nothing else '
                   'is written')
    p.add_argument('--save-embedding', default=None,
                   help='also save the 2-D points, labels and indices (.npz)')
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    return p.parse_args(argv)


def _close_file_logs(runner) -> None:
    """Close the Runner's log file handlers (their directory is about to
    be removed)."""
    import logging
    for h in list(runner.logger.handlers):
        if isinstance(h, logging.FileHandler):
            h.close()
            runner.logger.removeHandler(h)


def find_label_bank(model):
    """``(name, labels)`` of the pseudo-label memory of ``model`` (the
    ``ClusterMemory`` / ``LabelMemory`` of ODC, DeepCluster, InterCLR), or
    None."""
    from mmssl_ext.models.memories import ClusterState, find_memories
    found = find_memories(model, ClusterState)
    if not found:
        return None
    name, memory = found[0]
    return f'{name}.labels', memory.labels


def tsne_2d(feats: np.ndarray, perplexity: float = 30.,
            seed: int = 0) -> np.ndarray:
    """(N, D) features -> (N, 2) t-SNE embedding (cosine geometry: the
    features are L2-normalised first, as every contrastive method compares
    them)."""
    from sklearn.manifold import TSNE
    n = feats.shape[0]
    if n < 4:
        raise ValueError(f't-SNE needs at least 4 samples, got {n}')
    feats = feats / np.maximum(
        np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)
    # sklearn requires perplexity < n_samples
    perplexity = float(min(perplexity, max(1.0, (n - 1) / 3.0)))
    return TSNE(n_components=2, perplexity=perplexity, init='pca',
                random_state=seed).fit_transform(feats.astype(np.float32))


def plot_embedding(points: np.ndarray, labels: np.ndarray, out: str,
                   title: str, class_names: Optional[Sequence[str]] = None,
                   legend_title: str = 'label') -> str:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    uniq = np.unique(labels)
    cmap = plt.get_cmap('tab10' if len(uniq) <= 10 else
                        'tab20' if len(uniq) <= 20 else 'hsv')
    fig, ax = plt.subplots(figsize=(7.5, 7))
    for j, c in enumerate(uniq):
        m = labels == c
        colour = cmap(j % cmap.N) if len(uniq) <= 20 else cmap(
            j / max(len(uniq), 1))
        name = (class_names[c] if class_names is not None
                and 0 <= c < len(class_names) else str(c))
        ax.scatter(points[m, 0], points[m, 1], s=6, color=colour,
                   label=name, alpha=0.8, linewidths=0)
    if len(uniq) <= 20:
        ax.legend(title=legend_title, markerscale=3, fontsize=8,
                  loc='center left', bbox_to_anchor=(1.0, 0.5))
    import textwrap
    ax.set_title('\n'.join(textwrap.wrap(title, 70)), fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def visualize_tsne(cfg, checkpoint: str, split: str = 'test',
                   feature: str = 'backbone', color_by: str = 'label',
                   max_samples: int = 2000, perplexity: float = 30.,
                   seed: int = 0, out: Optional[str] = None,
                   batch_size: Optional[int] = None,
                   test_split: Optional[str] = None,
                   save_embedding: Optional[str] = None) -> dict:
    import tempfile

    import torch
    from mmengine.logging import print_log
    from mmengine.model import is_model_wrapper

    from mmssl_ext.engine.runners.knn_loop import _labels_of
    from mmssl_ext.utils.extract import extract_features

    if color_by == 'pseudo' and split != 'train':
        raise ValueError('--color-by pseudo colours the *training* samples '
                         'by the label bank the model holds for them: use '
                         '--split train')
    if max_samples < 4:
        raise ValueError(f'--max-samples must be >= 4, got {max_samples}')
    ke = _knn_eval_module()
    bank_cfg, query_cfg, _ = ke.resolve_knn_loaders(cfg, test_split,
                                                    batch_size)
    # the Runner (logs, visualizer backends) lives in a temporary work dir:
    # the tool writes nothing but --out / --save-embedding
    with tempfile.TemporaryDirectory(prefix='mmssl_tsne_') as tmp:
        cfg = copy.deepcopy(cfg)
        cfg.work_dir = tmp
        # a unique name: Runners of the same second would share the logger
        # and visualizer instances (and their removed directories)
        cfg.experiment_name = osp.basename(tmp)
        runner, model, kind = ke.build_eval_runner(cfg, checkpoint, feature)
        ori = model.module if is_model_wrapper(model) else model
        loader = runner.build_dataloader(
            bank_cfg if split == 'train' else query_cfg, seed=runner.seed)
        dataset = loader.dataset
        feats = extract_features(model, loader, feature)
        _close_file_logs(runner)
    if color_by == 'pseudo':
        found = find_label_bank(ori)
        if found is None:
            raise ValueError(
                f'--color-by pseudo: the model of {cfg.filename} has no '
                'pseudo-label memory (only clustering methods such as ODC, '
                'DeepCluster and InterCLR keep pseudo-labels)')
        if kind != 'full':
            raise ValueError('--color-by pseudo needs the pre-training '
                             'checkpoint (a backbone-only file has no label '
                             'bank)')
        name, labels = found
        labels = labels.detach().cpu().long()
        if labels.numel() != len(dataset):
            raise ValueError(
                f'{name} has {labels.numel()} entries but the train split '
                f'has {len(dataset)} samples')
        class_names, legend = None, 'pseudo-label'
    else:
        labels = _labels_of(dataset)
        class_names = (dataset.metainfo or {}).get('classes')
        legend = 'class'
    g = torch.Generator().manual_seed(seed)
    n = feats.size(0)
    idx = torch.randperm(n, generator=g)[:max_samples].sort().values
    pts = tsne_2d(feats[idx].cpu().numpy(), perplexity, seed)
    lab = labels[idx].numpy()
    if out is None:
        stem = osp.splitext(osp.basename(cfg.filename or 'model'))[0]
        out = f'{stem}_tsne_{split}_{color_by}.png'
    title = (f'{osp.basename(str(checkpoint))}: t-SNE of {feature} '
             f'features, {len(idx)} {split} samples, coloured by '
             f'{"pseudo-label" if color_by == "pseudo" else "true label"}')
    plot_embedding(pts, lab, out, title, class_names, legend)
    if save_embedding:
        np.savez(save_embedding, points=pts, labels=lab, index=idx.numpy())
    print_log(f't-SNE plot written to {out}', logger='current')
    return dict(out=out, points=pts, labels=lab, index=idx.numpy())


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    from mmengine.config import Config
    import mmssl_ext  # noqa: F401
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    return visualize_tsne(
        cfg, args.checkpoint, split=args.split, feature=args.feature,
        color_by=args.color_by, max_samples=args.max_samples,
        perplexity=args.perplexity, seed=args.seed, out=args.out,
        batch_size=args.batch_size, test_split=args.test_split,
        save_embedding=args.save_embedding)


if __name__ == '__main__':
    main()
