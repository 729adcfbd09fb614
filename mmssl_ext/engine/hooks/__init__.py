from .val_before_train_hook import ValBeforeTrainHook

__all__ = ['ValBeforeTrainHook']
from .nonfinite_loss_hook import NonFiniteLossHook  # noqa: F401,E402
from .offline_cluster_hook import OfflineClusterHook  # noqa: F401,E402
from .cluster_memory_hook import ClusterMemoryHook  # noqa: F401,E402
from .contrastive_crop_hook import ContrastiveCropHook  # noqa: F401,E402
from .interclr_hook import InterCLRHook  # noqa: F401,E402
