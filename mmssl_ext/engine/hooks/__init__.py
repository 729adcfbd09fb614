from .channels_last_hook import ChannelsLastHook
from .cluster_memory_hook import ClusterMemoryHook
from .diagnostics_hook import DiagnosticsHook
from .memory_check_hook import MemoryCheckHook
from .model_param_schedule_hook import ModelParamScheduleHook
from .nonfinite_loss_hook import NonFiniteLossHook
from .offline_cluster_hook import OfflineClusterHook
from .preemption_hook import PreemptionHook
from .val_before_train_hook import ValBeforeTrainHook

__all__ = [
    'ChannelsLastHook', 'ClusterMemoryHook', 'DiagnosticsHook',
    'MemoryCheckHook', 'ModelParamScheduleHook', 'NonFiniteLossHook',
    'OfflineClusterHook', 'PreemptionHook', 'ValBeforeTrainHook'
]
