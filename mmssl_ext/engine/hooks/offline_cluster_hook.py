"""Offline clustering of the whole training set into the model's
pseudo-label memory (DeepCluster; the initial clustering of ODC and
InterCLR; InterCLR's offline labels)."""
import copy
import time
from typing import Optional

import torch
from mmengine import dist
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmpretrain.utils import get_ori_model

from mmssl_ext.models.interfaces import Clusterable
from mmssl_ext.models.memories import (ClusterState, check_memories,
                                       find_memories)
from mmssl_ext.models.utils.kmeans import kmeans
from mmssl_ext.registry import HOOKS
from mmssl_ext.utils.dist import broadcast_from_rank0
from mmssl_ext.utils.extract import extract_features

_KMEANS_KEYS = ('backend', 'num_iters', 'spherical', 'pca_dim', 'seed',
                'normalize', 'init', 'chunk_size')


def check_interval(key: str, value: Optional[int]) -> Optional[int]:
    """The interval rule of the clustering hooks: an int >= 1, or None to
    switch the action off."""
    if value is not None and (isinstance(value, bool)
                              or not isinstance(value, int) or value < 1):
        raise ValueError(f'{key}={value!r} must be an int >= 1, or None to '
                         'switch it off')
    return value


def cluster_memory(model, hook: str) -> ClusterState:
    """The pseudo-label memory of ``model`` (exactly one is expected)."""
    found = find_memories(model, ClusterState)
    if len(found) != 1:
        raise TypeError(
            f'{hook} needs exactly one pseudo-label memory (ClusterMemory or '
            f'LabelMemory) in the model; {type(model).__name__} has '
            f'{[name for name, _ in found] or "none"}')
    return found[0][1]


def log_cluster_sizes(runner, memory: ClusterState) -> None:
    """Log the empty count, min / median / max size of the clusters of
    ``memory`` (rank 0) and push ``train/clusters_{empty,min,max}`` scalars
    to the message hub."""
    hist = torch.bincount(memory.labels.view(-1).long().cpu(),
                          minlength=memory.num_clusters)
    s = dict(empty=int((hist == 0).sum()), min=int(hist.min()),
             max=int(hist.max()))
    print_log(
        f'clusters: K={memory.num_clusters}, empty={s["empty"]}, size '
        f'min={s["min"]}, median={float(hist.float().median()):.1f}, '
        f'max={s["max"]}',
        logger='current')
    for key, value in s.items():
        runner.message_hub.update_scalar(f'train/clusters_{key}', value)


@HOOKS.register_module()
class OfflineClusterHook(Hook):
    """Extract features of the whole training set, k-means them and hand
    the labels to the model's pseudo-label memory.

    The memory is the model's one :class:`~mmssl_ext.models.memories.
    ClusterState` module (a ``ClusterMemory`` or a ``LabelMemory``, found by
    type); the features are ``model.clustering_feature(inputs)``, the method
    every clustering algorithm declares
    (:class:`~mmssl_ext.models.interfaces.Clusterable`).

    When: ``before_train`` if the memory holds no labels yet (a resumed or
    loaded checkpoint brings them), and after every ``interval`` training
    epochs (``None``: initial clustering only). Before training, every
    memory of the model is checked against the training-set length.

    Steps (identical with 1 or N processes):

    1. ``extract_features`` (:mod:`mmssl_ext.utils.extract`) runs the model
       in eval mode over ``extract_dataloader`` (the training images with a
       test pipeline, ``DefaultSampler(shuffle=False, round_up=False)``):
       every rank gets the (N, D) features in data-set order.
    2. Rank 0 runs :func:`~mmssl_ext.models.utils.kmeans.kmeans` (``k`` =
       the memory's ``num_clusters``; seed ``seed + epoch``) and broadcasts
       the labels (N,) only.
    3. ``memory.set_clusters(feats, labels)``; optionally
       ``model.reset_head(seed)`` (DeepCluster: new classes, new
       classifier) and the labels go to the training sampler
       (``uniform_sampling``).
    4. The cluster sizes are logged (``train/clusters_{empty,min,max}``).

    Args:
        extract_dataloader (dict): dataloader config (see step 1).
        clustering (dict, optional): :func:`kmeans` options among
            ``backend, num_iters, spherical, pca_dim, seed, normalize, init,
            chunk_size``. Defaults: ``backend='auto', num_iters=20,
            pca_dim=-1, normalize=True, seed=0`` (L2-normalised features;
            DeepCluster's recipe sets ``pca_dim=256``).
        initial (bool): cluster before training when the memory is empty;
            False requires a checkpoint that holds the labels. Defaults to
            True.
        interval (int, optional): epochs between re-clusterings; None =
            initial only (ODC, InterCLR's online labels). Defaults to None.
        reset_head (bool): call ``model.reset_head(seed)`` after each
            clustering.
        uniform_sampling (bool): hand the labels to the training sampler
            (``ClusterSampler.set_uniform_indices``) so that batches are
            drawn uniformly over clusters (DeepCluster); also after a
            resume.
        progress (bool): show the extraction progress bar.
    """
    priority = 'NORMAL'

    def __init__(self,
                 extract_dataloader: dict,
                 clustering: Optional[dict] = None,
                 initial: bool = True,
                 interval: Optional[int] = None,
                 reset_head: bool = False,
                 uniform_sampling: bool = False,
                 progress: bool = True) -> None:
        if not isinstance(extract_dataloader, dict):
            raise TypeError('extract_dataloader must be a dataloader config '
                            'dict')
        self.interval = check_interval('interval', interval)
        self.clustering = dict(backend='auto', num_iters=20, pca_dim=-1,
                               normalize=True, seed=0)
        for key, value in (clustering or {}).items():
            if key not in _KMEANS_KEYS:
                raise ValueError(f'clustering.{key} is not a kmeans option; '
                                 f'valid: {_KMEANS_KEYS}')
            self.clustering[key] = value
        self.extract_dataloader_cfg = copy.deepcopy(extract_dataloader)
        self.initial = initial
        self.reset_head = reset_head
        self.uniform_sampling = uniform_sampling
        self.progress = progress
        self._loader = None

    # ----------------------------------------------------------- helpers
    def _dataloader(self, runner):
        if self._loader is None:
            self._loader = runner.build_dataloader(
                self.extract_dataloader_cfg, seed=runner.seed)
        return self._loader

    def _push_to_sampler(self, runner, memory) -> None:
        sampler = runner.train_dataloader.sampler
        if not hasattr(sampler, 'set_uniform_indices'):
            raise TypeError(
                'uniform_sampling=True needs train_dataloader.sampler='
                f"dict(type='ClusterSampler'), got {type(sampler).__name__}")
        sampler.set_uniform_indices(memory.labels, memory.num_clusters)

    @torch.no_grad()
    def cluster(self, runner) -> torch.Tensor:
        """Run steps 1-4 now; returns the labels (N,)."""
        model = get_ori_model(runner.model)
        memory = cluster_memory(model, type(self).__name__)
        if not isinstance(model, Clusterable):
            raise TypeError(f'{type(model).__name__} declares no '
                            'clustering_feature(inputs) (Clusterable)')
        t0 = time.perf_counter()
        feats = extract_features(
            runner.model, self._dataloader(runner),
            feature=lambda _, inputs: model.clustering_feature(inputs),
            progress=self.progress)
        t_extract = time.perf_counter() - t0
        opts = dict(self.clustering)
        seed = int(opts.pop('seed')) + int(runner.epoch)
        labels = None
        if dist.get_rank() == 0:
            t0 = time.perf_counter()
            labels = kmeans(feats, memory.num_clusters, seed=seed,
                            **opts).labels.cpu()
            t_kmeans = time.perf_counter() - t0
            print_log(
                f'k-means: {feats.shape[0]} x {feats.shape[1]} features -> '
                f'K={memory.num_clusters} (backend={opts["backend"]}, '
                f'{opts["num_iters"]} iterations, pca_dim={opts["pca_dim"]}) '
                f'in {t_kmeans:.2f}s; feature extraction {t_extract:.2f}s',
                logger='current')
            runner.message_hub.update_scalar('train/kmeans_time', t_kmeans)
        labels = broadcast_from_rank0(labels).to(feats.device)
        memory.set_clusters(feats, labels)
        if self.reset_head:
            model.reset_head(seed=seed)
        if self.uniform_sampling:
            self._push_to_sampler(runner, memory)
        log_cluster_sizes(runner, memory)
        return labels

    # -------------------------------------------------------------- hooks
    def before_train(self, runner) -> None:
        model = get_ori_model(runner.model)
        n = len(runner.train_dataloader.dataset)
        check_memories(model, n)
        memory = cluster_memory(model, type(self).__name__)
        n_extract = len(self._dataloader(runner).dataset)
        if n_extract != n:
            raise ValueError(
                f'extract_dataloader has {n_extract} samples but the '
                f'training set has {n}: extract_dataloader.dataset must be '
                'the training set (with a test pipeline)')
        if memory.is_initialized():
            runner.logger.info(f'{type(self).__name__}: pseudo-labels '
                               'restored from the checkpoint; no initial '
                               'clustering')
            if self.uniform_sampling:
                self._push_to_sampler(runner, memory)
        elif self.initial:
            self.cluster(runner)
        else:
            raise RuntimeError(
                f'{type(self).__name__}(initial=False) but the memory holds '
                'no labels: load a checkpoint that holds them or set '
                'initial=True')

    def after_train_epoch(self, runner) -> None:
        if self.interval is not None and self.every_n_epochs(
                runner, self.interval):
            self.cluster(runner)
