"""Offline clustering of the whole training set (DeepCluster-style), usable
by any algorithm that exposes cluster state."""
import copy
import time
from typing import Callable, Optional, Union

import torch
from mmengine import dist
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmpretrain.utils import get_ori_model

from mmssl_ext.models.utils.kmeans import kmeans
from mmssl_ext.registry import HOOKS
from mmssl_ext.utils.dist import broadcast_from_rank0
from mmssl_ext.utils.extract import extract_features

_KMEANS_KEYS = ('backend', 'num_iters', 'spherical', 'pca_dim', 'seed',
                'normalize', 'init', 'chunk_size')


def cluster_size_summary(labels: torch.Tensor, k: int) -> dict:
    """Empty count, min / max / median size of ``k`` clusters."""
    hist = torch.bincount(labels.view(-1).long().cpu(), minlength=k)
    return dict(
        num_clusters=k,
        empty=int((hist == 0).sum()),
        min=int(hist.min()),
        max=int(hist.max()),
        median=float(hist.float().median()))


def log_cluster_sizes(runner, labels: torch.Tensor, k: int,
                      prefix: str = 'clusters') -> dict:
    """Log :func:`cluster_size_summary` (rank 0) and push the numbers to the
    message hub as ``train/<prefix>_<field>`` scalars."""
    s = cluster_size_summary(labels, k)
    print_log(
        f'{prefix}: K={k}, empty={s["empty"]}, size min={s["min"]}, '
        f'median={s["median"]:.1f}, max={s["max"]}',
        logger='current')
    for key in ('empty', 'min', 'max'):
        runner.message_hub.update_scalar(f'train/{prefix}_{key}', s[key])
    return s


def _model_api(model):
    """Return (num_clusters, setter, has_clusters, labels) of ``model``:
    the declared cluster API, or a ``model.memory`` ClusterMemory."""
    if hasattr(model, 'set_clusters'):
        return (model.num_clusters, model.set_clusters, model.has_clusters,
                model.cluster_labels)
    mem = getattr(model, 'memory', None)
    if mem is not None and hasattr(mem, 'init_memory'):
        return (mem.num_clusters,
                lambda f, lab, c=None: mem.init_memory(f, lab),
                lambda: bool(mem.initialized), lambda: mem.label_bank)
    raise TypeError(
        f'{type(model).__name__} exposes no cluster state: implement '
        'num_clusters / set_clusters(feats, labels, centroids) / '
        'has_clusters() / cluster_labels(), or hold a ClusterMemory as '
        '`memory`')


@HOOKS.register_module()
class OfflineClusterHook(Hook):
    """Extract features of the whole training set, k-means them and hand
    labels / centroids to the model (DeepCluster; ODC's initial clustering).

    When: ``before_train`` if ``initial`` and the model holds no clusters
    yet (a resumed or loaded checkpoint already carries them), and after
    every ``interval`` training epochs (``None``: initial only).

    Steps (identical with 1 or N processes):

    1. ``extract_features`` (:mod:`mmssl_ext.utils.extract`) runs the model
       in eval mode over ``extract_dataloader`` (the training images with a
       test pipeline, ``DefaultSampler(shuffle=False, round_up=False)``):
       each rank embeds its slice, rows are placed by ``sample_idx`` and
       summed across ranks (duplicates averaged), so every rank gets the
       (N, D) features in data-set order. mmengine progress bar on rank 0.
       The feature is ``model.clustering_feature(inputs)`` when the model
       defines it, else ``feature`` (``'neck'`` / ``'backbone'`` / callable).
    2. Rank 0 runs :func:`~mmssl_ext.models.utils.kmeans.kmeans` (``k`` =
       the model's ``num_clusters``; seed ``seed + epoch``) and broadcasts
       the labels (N,) and centroids (K, D') only.
    3. ``model.set_clusters(feats, labels, centroids)`` (or
       ``model.memory.init_memory(feats, labels)``); optionally
       ``model.reset_head(seed)`` (DeepCluster: new classes, new
       classifier) and ``model.set_reweight(labels, reweight_pow)``.
    4. The cluster-size histogram (empty / min / median / max) is logged.

    Args:
        extract_dataloader (dict): dataloader config (see step 1).
        clustering (dict, optional): :func:`kmeans` options among
            ``backend, num_iters, spherical, pca_dim, seed, normalize, init,
            chunk_size``. Defaults: ``backend='auto', num_iters=20,
            pca_dim=-1, normalize=True, seed=0`` (DeepCluster: L2-normalised
            features; its recipe sets ``pca_dim=256``).
        initial (bool): cluster before training. Defaults to True.
        interval (int, optional): epochs between re-clusterings; None =
            initial only (ODC). Defaults to None.
        reset_head (bool): call ``model.reset_head`` after each clustering.
        reweight (bool): call ``model.set_reweight`` after each clustering.
        reweight_pow (float): exponent of the inverse-frequency weights.
        uniform_sampling (bool): hand the labels to the training sampler
            (``ClusterSampler.set_uniform_indices``) so that batches are
            drawn uniformly over clusters (DeepCluster); also after a
            resume.
        feature (str | callable): fallback feature (see step 1).
        progress (bool): show the extraction progress bar.
    """
    priority = 'NORMAL'

    def __init__(self,
                 extract_dataloader: dict,
                 clustering: Optional[dict] = None,
                 initial: bool = True,
                 interval: Optional[int] = None,
                 reset_head: bool = False,
                 reweight: bool = False,
                 reweight_pow: float = 0.5,
                 uniform_sampling: bool = False,
                 feature: Union[str, Callable] = 'neck',
                 progress: bool = True) -> None:
        if interval is not None and interval < 1:
            raise ValueError(f'interval={interval} must be >= 1 or None')
        cfg = dict(backend='auto', num_iters=20, pca_dim=-1, normalize=True,
                   seed=0)
        for key, v in (clustering or {}).items():
            if key not in _KMEANS_KEYS:
                raise ValueError(f'clustering.{key} is not a kmeans option; '
                                 f'valid: {_KMEANS_KEYS}')
            cfg[key] = v
        self.clustering = cfg
        self.extract_dataloader_cfg = copy.deepcopy(extract_dataloader)
        self.initial, self.interval = initial, interval
        self.reset_head, self.reweight = reset_head, reweight
        self.reweight_pow = reweight_pow
        self.uniform_sampling = uniform_sampling
        self.feature, self.progress = feature, progress
        self._loader = None

    # ----------------------------------------------------------- helpers
    def _dataloader(self, runner):
        if self._loader is None:
            cfg = self.extract_dataloader_cfg
            if isinstance(cfg, dict):
                self._loader = runner.build_dataloader(cfg, seed=runner.seed)
            else:
                self._loader = cfg
        return self._loader

    def _feature_fn(self, model):
        if hasattr(model, 'clustering_feature'):
            return lambda m, inputs: model.clustering_feature(inputs)
        return self.feature

    def _push_to_sampler(self, runner, labels, num_clusters) -> None:
        sampler = runner.train_dataloader.sampler
        if not hasattr(sampler, 'set_uniform_indices'):
            raise TypeError(
                'uniform_sampling=True needs train_dataloader.sampler='
                f"dict(type='ClusterSampler'), got {type(sampler).__name__}")
        sampler.set_uniform_indices(labels, num_clusters)

    @torch.no_grad()
    def cluster(self, runner) -> torch.Tensor:
        """Run steps 1-4 now; returns the labels (N,)."""
        model = get_ori_model(runner.model)
        num_clusters, setter, _, _ = _model_api(model)
        loader = self._dataloader(runner)
        t0 = time.perf_counter()
        feats = extract_features(runner.model, loader,
                                 feature=self._feature_fn(model),
                                 progress=self.progress)
        t_extract = time.perf_counter() - t0
        opts = dict(self.clustering)
        seed = int(opts.pop('seed')) + int(runner.epoch)
        if dist.get_rank() == 0:
            t0 = time.perf_counter()
            res = kmeans(feats, num_clusters, seed=seed,
                         key='num_clusters', **opts)
            labels, centroids = res.labels.cpu(), res.centroids.cpu()
            t_kmeans = time.perf_counter() - t0
            print_log(
                f'k-means: {feats.shape[0]} x {feats.shape[1]} features -> '
                f'K={num_clusters} (backend={opts["backend"]}, '
                f'{opts["num_iters"]} iterations, pca_dim={opts["pca_dim"]}) '
                f'in {t_kmeans:.2f}s; feature extraction {t_extract:.2f}s',
                logger='current')
            runner.message_hub.update_scalar('train/kmeans_time', t_kmeans)
        else:
            labels = centroids = None
        labels = broadcast_from_rank0(labels).to(feats.device)
        centroids = broadcast_from_rank0(centroids).to(feats.device)
        setter(feats, labels, centroids)
        if self.reset_head:
            model.reset_head(seed=seed)
        if self.reweight:
            model.set_reweight(labels, self.reweight_pow)
        if self.uniform_sampling:
            self._push_to_sampler(runner, labels, num_clusters)
        log_cluster_sizes(runner, labels, num_clusters)
        return labels

    # -------------------------------------------------------------- hooks
    def before_train(self, runner) -> None:
        model = get_ori_model(runner.model)
        num_clusters, _, has_clusters, get_labels = _model_api(model)
        n = len(runner.train_dataloader.dataset)
        if hasattr(model, 'check_dataset_length'):
            model.check_dataset_length(n)
        n_extract = len(self._dataloader(runner).dataset)
        if n_extract != n:
            raise ValueError(
                f'extract_dataloader has {n_extract} samples but the '
                f'training set has {n}: extract_dataloader.dataset must be '
                'the training set (with a test pipeline)')
        if self.initial and not has_clusters():
            self.cluster(runner)
        elif self.uniform_sampling and has_clusters():
            self._push_to_sampler(runner, get_labels(), num_clusters)

    def after_train_epoch(self, runner) -> None:
        if self.interval is not None and self.every_n_epochs(
                runner, self.interval):
            self.cluster(runner)
