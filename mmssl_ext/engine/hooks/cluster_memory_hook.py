"""Per-iteration maintenance of online pseudo-labels (ODC's ODCHook; the
online labels of InterCLR)."""
from typing import Optional

from mmengine.hooks import Hook
from mmpretrain.utils import get_ori_model

from mmssl_ext.models.memories import ClusterMemory, find_memories
from mmssl_ext.registry import HOOKS
from .offline_cluster_hook import check_interval, log_cluster_sizes


@HOOKS.register_module()
class ClusterMemoryHook(Hook):
    """After training iterations, for every
    :class:`~mmssl_ext.models.memories.ClusterMemory` of the model with
    ``online_labels`` (found by type):

    * every ``centroids_update_interval`` iterations:
      ``memory.update_centroids()`` (rank 0 computes, broadcasts K x D);
    * every ``deal_with_small_clusters_interval`` iterations:
      ``memory.deal_with_small_clusters()``;
    * every ``evaluate_interval`` iterations: log the cluster sizes
      (``train/clusters_{empty,min,max}``).

    Every interval is an int >= 1, or None to switch the action off. The
    hook keeps no state (everything is in the memory's buffers) and works
    with and without a model wrapper.

    Args:
        centroids_update_interval (int, optional): Defaults to 10 (ODC,
            InterCLR).
        deal_with_small_clusters_interval (int, optional): Defaults to 1.
        evaluate_interval (int, optional): Defaults to 50.
    """
    priority = 'NORMAL'

    def __init__(self,
                 centroids_update_interval: Optional[int] = 10,
                 deal_with_small_clusters_interval: Optional[int] = 1,
                 evaluate_interval: Optional[int] = 50) -> None:
        self.centroids_update_interval = check_interval(
            'centroids_update_interval', centroids_update_interval)
        self.small_interval = check_interval(
            'deal_with_small_clusters_interval',
            deal_with_small_clusters_interval)
        self.evaluate_interval = check_interval('evaluate_interval',
                                                evaluate_interval)

    @staticmethod
    def _memories(runner):
        return [
            m for _, m in find_memories(get_ori_model(runner.model),
                                        ClusterMemory) if m.online_labels
        ]

    def before_train(self, runner) -> None:
        if not self._memories(runner):
            model = get_ori_model(runner.model)
            raise TypeError(
                'ClusterMemoryHook maintains online pseudo-labels, but '
                f'{type(model).__name__} holds no ClusterMemory with '
                'online_labels=True: remove the hook (offline labels are '
                "re-clustered by OfflineClusterHook's interval)")

    def _every(self, runner, n: Optional[int]) -> bool:
        return n is not None and self.every_n_train_iters(runner, n)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        for memory in self._memories(runner):
            if self._every(runner, self.centroids_update_interval):
                memory.update_centroids()
            if self._every(runner, self.small_interval):
                memory.deal_with_small_clusters()
            if self._every(runner, self.evaluate_interval):
                log_cluster_sizes(runner, memory)
