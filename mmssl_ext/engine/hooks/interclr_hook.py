"""Clustering / label-maintenance hook of InterCLR (MMEngine port of
MMSelfSup 0.x ``InterCLRHook``; spec section 2.2)."""
import copy
from typing import Optional, Sequence

import torch
from mmengine import dist
from mmengine.hooks import Hook
from mmengine.runner import Runner
from mmpretrain.utils import get_ori_model

from mmssl_ext.registry import HOOKS
from mmssl_ext.utils.dist import broadcast_from_rank0
from mmssl_ext.utils.extract import extract_features
from mmssl_ext.models.utils.kmeans import kmeans

_MODEL_API = ('get_loss_weights', 'set_loss_weights', 'init_memory',
              'set_pseudo_labels', 'update_centroids',
              'deal_with_small_clusters', 'cluster_size_summary',
              'cluster_feature', 'check_dataset_length')


@HOOKS.register_module()
class InterCLRHook(Hook):
    """Pseudo-label maintenance of :class:`InterCLRMoCo`.

    * ``before_train``: check the memory length and ``num_clusters``
      against the training set, then, unless the memory already holds data
      (resumed / loaded checkpoint), extract the (inter) neck features of the
      whole training set with the current query encoder (``extract_dataloader``,
      a test pipeline), run k-means on rank 0 (``model.memory.num_clusters``
      clusters, 20 Lloyd iterations on L2-normalised features, no PCA, as
      the reference) and broadcast the labels; the model stores the
      features, labels and centroids (``model.init_memory``).
    * ``before_train_epoch``: during the first ``warmup_epochs`` epochs the
      loss weights are (intra 1, inter 0); afterwards the configured ones.
    * ``after_train_iter`` (online labels): every
      ``centroids_update_interval`` (10) iterations recompute all centroids;
      every ``deal_with_small_clusters_interval`` (1) iterations dissolve
      clusters smaller than ``min_cluster`` and split the largest; every
      ``evaluate_interval`` (50) iterations log the cluster-size summary.
    * ``after_train_epoch`` (offline labels, ``model.online_labels=False``):
      every ``interval`` epochs, re-extract and re-cluster the training set
      and replace the label bank (``model.set_pseudo_labels``).

    The model is reached with ``get_ori_model`` and only through the
    methods it declares, so the hook works wrapped (DDP) or not. All state
    lives in the model's buffers (checkpointed); the hook keeps none.

    Args:
        extract_dataloader (dict): dataloader config over the *training*
            set with a test pipeline ending in ``PackInputs`` (sample_idx)
            and ``DefaultSampler(shuffle=False)``.
        clustering (dict, optional): extra arguments of
            :func:`mmssl_ext.models.utils.kmeans.kmeans`. Defaults to
            ``dict(num_iters=20, normalize=True, pca_dim=-1, backend='auto',
            seed=0)``; the seed is offset by the epoch at each re-clustering.
        centroids_update_interval (int): iterations. Defaults to 10.
        deal_with_small_clusters_interval (int): iterations. Defaults to 1.
        evaluate_interval (int): iterations between histogram logs.
            Defaults to 50.
        warmup_epochs (int): epochs with the inter loss switched off.
            Defaults to 0.
        initial (bool): cluster before training when the memory is empty.
            Defaults to True.
        interval (int): epochs between re-clusterings in offline-label mode.
            Defaults to 10.
    """
    priority = 'NORMAL'

    def __init__(self,
                 extract_dataloader: dict,
                 clustering: Optional[dict] = None,
                 centroids_update_interval: int = 10,
                 deal_with_small_clusters_interval: int = 1,
                 evaluate_interval: int = 50,
                 warmup_epochs: int = 0,
                 initial: bool = True,
                 interval: int = 10) -> None:
        for key, v in (('centroids_update_interval',
                        centroids_update_interval),
                       ('deal_with_small_clusters_interval',
                        deal_with_small_clusters_interval),
                       ('evaluate_interval', evaluate_interval),
                       ('interval', interval)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f'{key}={v!r} must be an int >= 1')
        if warmup_epochs < 0:
            raise ValueError(f'warmup_epochs={warmup_epochs} must be >= 0')
        if not isinstance(extract_dataloader, dict):
            raise TypeError('extract_dataloader must be a dataloader config '
                            'dict')
        cl = dict(num_iters=20, normalize=True, pca_dim=-1, backend='auto',
                  seed=0)
        cl.update(clustering or {})
        for bad in ('x', 'k'):
            if bad in cl:
                raise ValueError(f'clustering.{bad} is set by the hook (the '
                                 'number of clusters is '
                                 'model.memory.num_clusters)')
        self.extract_dataloader_cfg = copy.deepcopy(extract_dataloader)
        self.clustering = cl
        self.centroids_update_interval = centroids_update_interval
        self.deal_with_small_clusters_interval = \
            deal_with_small_clusters_interval
        self.evaluate_interval = evaluate_interval
        self.warmup_epochs = int(warmup_epochs)
        self.initial = bool(initial)
        self.interval = interval
        self._loss_weights = None
        self._extract_loader = None

    # ------------------------------------------------------------ helpers
    @staticmethod
    def _model(runner):
        model = get_ori_model(runner.model)
        missing = [m for m in _MODEL_API if not hasattr(model, m)]
        if missing:
            raise TypeError(f'InterCLRHook needs an InterCLRMoCo-like model; '
                            f'{type(model).__name__} lacks {missing}')
        return model

    def _loader(self, runner):
        if self._extract_loader is None:
            self._extract_loader = Runner.build_dataloader(
                copy.deepcopy(self.extract_dataloader_cfg),
                seed=runner.seed)
        return self._extract_loader

    def _log_histogram(self, runner, model, prefix: str = '') -> None:
        s = model.cluster_size_summary()
        runner.logger.info(
            f'{prefix}clusters: {model.num_clusters}, empty: '
            f'{int(s["cluster_empty"])}, min size: {int(s["cluster_min"])}, '
            f'max size: {int(s["cluster_max"])}')

    @torch.no_grad()
    def cluster(self, runner, init: bool) -> torch.Tensor:
        """Extract features of the training set, k-means them on rank 0,
        broadcast the labels; ``init`` fills the memory, otherwise only the
        labels are replaced. Returns the labels."""
        model = self._model(runner)
        loader = self._loader(runner)
        n = len(loader.dataset)
        model.check_dataset_length(n)
        device = model.memory.bank.device
        runner.logger.info(f'InterCLRHook: extracting features of {n} '
                           'training samples for clustering')
        feats = extract_features(
            runner.model, loader, feature=model.cluster_feature,
            device=device)
        labels = None
        if dist.get_rank() == 0:
            cfg = dict(self.clustering)
            cfg['seed'] = int(cfg.get('seed', 0)) + int(runner.epoch)
            labels = kmeans(feats, model.num_clusters,
                            key='model.memory.num_clusters', **cfg).labels
            labels = labels.long().to(device)
        labels = broadcast_from_rank0(
            labels if labels is not None else torch.zeros(0, dtype=torch.long,
                                                          device=device))
        labels = labels.to(device)
        if init:
            model.init_memory(feats, labels)
        else:
            model.set_pseudo_labels(labels)
        self._log_histogram(runner, model, prefix='InterCLRHook k-means: ')
        return labels

    # -------------------------------------------------------------- hooks
    def before_train(self, runner) -> None:
        model = self._model(runner)
        self._loss_weights = model.get_loss_weights()
        n = len(runner.train_dataloader.dataset)
        model.check_dataset_length(n)
        if model.memory_initialized:
            runner.logger.info('InterCLRHook: memory restored from the '
                               'checkpoint; skipping the initial clustering')
            return
        if not self.initial:
            raise RuntimeError(
                'InterCLRHook(initial=False) but the memory is empty: load a '
                'checkpoint that holds it or set initial=True')
        self.cluster(runner, init=True)

    def before_train_epoch(self, runner) -> None:
        model = self._model(runner)
        if self._loss_weights is None:
            self._loss_weights = model.get_loss_weights()
        if runner.epoch < self.warmup_epochs:
            model.set_loss_weights(1., 0.)
        else:
            model.set_loss_weights(*self._loss_weights)

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: Optional[Sequence] = None,
                         outputs: Optional[dict] = None) -> None:
        model = self._model(runner)
        if not model.online_labels:
            return
        if self.every_n_train_iters(runner, self.centroids_update_interval):
            model.update_centroids()
        if self.every_n_train_iters(runner,
                                    self.deal_with_small_clusters_interval):
            model.deal_with_small_clusters()
        if self.every_n_train_iters(runner, self.evaluate_interval):
            self._log_histogram(runner, model)

    def after_train_epoch(self, runner) -> None:
        model = self._model(runner)
        if model.online_labels:
            return
        if self.every_n_epochs(runner, self.interval):
            self.cluster(runner, init=False)
