"""Clustering / label-maintenance hook of InterCLR (MMEngine port of
MMSelfSup 0.x ``InterCLRHook``; see configs/interclr/README.md)."""
from typing import Optional, Sequence

from mmpretrain.utils import get_ori_model

from mmssl_ext.registry import HOOKS
from .offline_cluster_hook import OfflineClusterHook, log_cluster_sizes

_MODEL_API = ('get_loss_weights', 'set_loss_weights', 'set_clusters',
              'has_clusters', 'cluster_labels', 'update_centroids',
              'deal_with_small_clusters', 'clustering_feature',
              'check_dataset_length', 'online_labels')


@HOOKS.register_module()
class InterCLRHook(OfflineClusterHook):
    """Pseudo-label maintenance of :class:`InterCLRMoCo`.

    Extraction and k-means are :class:`OfflineClusterHook`'s (shared with
    DeepCluster / ODC); this hook adds InterCLR's schedule:

    * ``before_train``: check the memory length against the training set,
      then, unless the memory already holds data (resumed / loaded
      checkpoint), extract the (inter-branch) neck features of the whole
      training set with the current query encoder (``extract_dataloader``:
      a test pipeline), k-means them on rank 0 (``model.num_clusters``; 20
      Lloyd iterations on L2-normalised features, no PCA, as the
      reference), broadcast labels / centroids and fill the memory
      (``model.set_clusters``: bank, labels, centroids).
    * ``before_train_epoch``: during the first ``warmup_epochs`` epochs the
      loss weights are (intra 1, inter 0); afterwards the configured ones
      (``model.set_loss_weights``).
    * ``after_train_iter`` (online labels): every
      ``centroids_update_interval`` (10) iterations recompute all
      centroids; every ``deal_with_small_clusters_interval`` (1) iterations
      dissolve clusters under ``min_cluster`` and split the largest; every
      ``evaluate_interval`` (50) iterations log the cluster-size summary.
    * ``after_train_epoch`` (offline labels, ``model.online_labels=False``):
      every ``interval`` epochs re-extract and re-cluster the training set;
      ``model.set_clusters`` then replaces only the label bank.

    The model is reached with ``get_ori_model`` and only through the methods
    it declares, so the hook works wrapped (DDP) or not. All state lives in
    the model's buffers (checkpointed); the hook keeps none.

    Args:
        extract_dataloader (dict): dataloader config over the *training*
            set with a test pipeline ending in ``PackInputs`` (sample_idx)
            and ``DefaultSampler(shuffle=False)``.
        clustering (dict, optional): :func:`~mmssl_ext.models.utils.kmeans`
            options (see :class:`OfflineClusterHook`). Defaults to
            ``dict(num_iters=20, normalize=True, pca_dim=-1, backend='auto',
            seed=0)``; the seed is offset by the epoch.
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
        progress (bool): extraction progress bar. Defaults to True.
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
                 interval: int = 10,
                 progress: bool = True) -> None:
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
        super().__init__(
            extract_dataloader=extract_dataloader,
            clustering=clustering,
            initial=initial,
            interval=None,  # re-clustering is decided below (offline only)
            progress=progress)
        self.centroids_update_interval = centroids_update_interval
        self.deal_with_small_clusters_interval = \
            deal_with_small_clusters_interval
        self.evaluate_interval = evaluate_interval
        self.warmup_epochs = int(warmup_epochs)
        self.recluster_interval = interval
        self._loss_weights = None

    @staticmethod
    def _model(runner):
        model = get_ori_model(runner.model)
        missing = [m for m in _MODEL_API if not hasattr(model, m)]
        if missing:
            raise TypeError(f'InterCLRHook needs an InterCLRMoCo-like model; '
                            f'{type(model).__name__} lacks {missing}')
        return model

    # -------------------------------------------------------------- hooks
    def before_train(self, runner) -> None:
        model = self._model(runner)
        self._loss_weights = model.get_loss_weights()
        if not self.initial and not model.has_clusters():
            raise RuntimeError(
                'InterCLRHook(initial=False) but the memory is empty: load a '
                'checkpoint that holds it or set initial=True')
        if model.has_clusters():
            runner.logger.info('InterCLRHook: memory restored from the '
                               'checkpoint; no initial clustering')
        super().before_train(runner)

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
            log_cluster_sizes(runner, model.cluster_labels(),
                              model.num_clusters)

    def after_train_epoch(self, runner) -> None:
        model = self._model(runner)
        if model.online_labels:
            return
        if self.every_n_epochs(runner, self.recluster_interval):
            self.cluster(runner)
