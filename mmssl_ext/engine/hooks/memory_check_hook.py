"""Check every memory of the model against the training set."""
from mmengine.hooks import Hook
from mmpretrain.utils import get_ori_model

from mmssl_ext.models.memories import check_memories
from mmssl_ext.registry import HOOKS


@HOOKS.register_module()
class MemoryCheckHook(Hook):
    """Before training, check that every memory of the model (feature
    banks, neighbour tables, pseudo-labels: every
    :class:`~mmssl_ext.models.memories.BaseMemory`) has one row per sample
    of the training set; the error names the config key
    (``model.memory.length``). A mismatch would otherwise index rows of
    other samples, or leave rows that no sample ever updates.

    The default runtime of this package registers it
    (``default_hooks.memory_check``); a model without memories passes.
    """
    priority = 'VERY_HIGH'

    def before_train(self, runner) -> None:
        check_memories(get_ori_model(runner.model),
                       len(runner.train_dataloader.dataset))
