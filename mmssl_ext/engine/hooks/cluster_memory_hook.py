"""Per-iteration maintenance of a ClusterMemory (ODC's ODCHook)."""
from mmengine.hooks import Hook
from mmpretrain.utils import get_ori_model

from mmssl_ext.registry import HOOKS
from .offline_cluster_hook import log_cluster_sizes


@HOOKS.register_module()
class ClusterMemoryHook(Hook):
    """Online cluster maintenance after every training iteration, for a
    model holding a :class:`~mmssl_ext.models.memories.ClusterMemory` as
    ``model.memory`` (ODC, InterCLR):

    * every ``centroids_update_interval`` iterations:
      ``memory.update_centroids()`` (rank 0 computes, broadcasts K x D);
    * every ``deal_with_small_clusters_interval`` iterations:
      ``memory.deal_with_small_clusters()``;
    * if ``reweight``: ``model.set_reweight(power=reweight_pow)``
      (inverse-frequency class weights from the label bank, every
      iteration);
    * every ``evaluate_interval`` iterations: log the cluster sizes.

    The hook keeps no state (everything is in the model's buffers) and
    reaches the model through ``get_ori_model`` (works with and without a
    DDP wrapper). 0 disables an interval.

    Args:
        centroids_update_interval (int): Defaults to 10 (ODC).
        deal_with_small_clusters_interval (int): Defaults to 1.
        evaluate_interval (int): Defaults to 50.
        reweight (bool): Defaults to True.
        reweight_pow (float): Defaults to 0.5.
    """
    priority = 'NORMAL'

    def __init__(self,
                 centroids_update_interval: int = 10,
                 deal_with_small_clusters_interval: int = 1,
                 evaluate_interval: int = 50,
                 reweight: bool = True,
                 reweight_pow: float = 0.5) -> None:
        for key, v in (('centroids_update_interval',
                        centroids_update_interval),
                       ('deal_with_small_clusters_interval',
                        deal_with_small_clusters_interval),
                       ('evaluate_interval', evaluate_interval)):
            if v < 0:
                raise ValueError(f'{key}={v} must be >= 0')
        self.centroids_update_interval = centroids_update_interval
        self.small_interval = deal_with_small_clusters_interval
        self.evaluate_interval = evaluate_interval
        self.reweight, self.reweight_pow = reweight, reweight_pow

    def before_train(self, runner) -> None:
        model = get_ori_model(runner.model)
        memory = getattr(model, 'memory', None)
        if memory is None or not hasattr(memory, 'deal_with_small_clusters'):
            raise TypeError(f'ClusterMemoryHook needs a ClusterMemory as '
                            f'`model.memory`; {type(model).__name__} has '
                            f'{type(memory).__name__}')
        if self.reweight and not hasattr(model, 'set_reweight'):
            raise TypeError(f'ClusterMemoryHook(reweight=True) needs '
                            f'{type(model).__name__}.set_reweight; set '
                            'reweight=False')

    def _every(self, runner, n: int) -> bool:
        return n > 0 and self.every_n_train_iters(runner, n)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        model = get_ori_model(runner.model)
        memory = model.memory
        if self._every(runner, self.centroids_update_interval):
            memory.update_centroids()
        if self._every(runner, self.small_interval):
            memory.deal_with_small_clusters()
        if self.reweight:
            model.set_reweight(power=self.reweight_pow)
        if self._every(runner, self.evaluate_interval):
            log_cluster_sizes(runner, memory.label_bank,
                              memory.num_clusters)
