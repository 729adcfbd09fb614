from .val_before_train_hook import ValBeforeTrainHook

__all__ = ['ValBeforeTrainHook']
from .nonfinite_loss_hook import NonFiniteLossHook  # noqa: F401,E402
