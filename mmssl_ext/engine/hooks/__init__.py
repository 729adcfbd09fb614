from .cluster_memory_hook import ClusterMemoryHook
from .contrastive_crop_hook import ContrastiveCropHook
from .diagnostics_hook import DiagnosticsHook
from .interclr_hook import InterCLRHook
from .nonfinite_loss_hook import NonFiniteLossHook
from .offline_cluster_hook import OfflineClusterHook
from .val_before_train_hook import ValBeforeTrainHook

__all__ = [
    'ClusterMemoryHook', 'ContrastiveCropHook', 'DiagnosticsHook',
    'InterCLRHook',
    'NonFiniteLossHook', 'OfflineClusterHook', 'ValBeforeTrainHook'
]
