from .val_before_train_hook import ValBeforeTrainHook

__all__ = ['ValBeforeTrainHook']
