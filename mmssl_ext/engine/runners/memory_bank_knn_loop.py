"""Weighted-kNN monitor against a model's feature memory (InvP's per-epoch
monitor; any model with one ``FeatureMemory``: NPID, CLD, InvP): the bank
rows are the training images' features, the evaluation images are embedded
with the test pipeline.

Reuses :class:`~mmssl_ext.engine.runners.KNNValLoop` (the evaluator plumbing,
:func:`~mmssl_ext.evaluation.knn_classify`'s vote); only the bank differs:
instead of extracting a bank split it takes the bank of the model's
feature memory and the training set's labels.

Config::

    val_dataloader = dict(...test split, test pipeline...)
    val_evaluator = dict(type='KNNAccuracy', topk=(1, 5))
    val_cfg = dict(type='MemoryBankKNNValLoop', k=200, sigma=0.07)
    default_hooks = dict(checkpoint=dict(type='CheckpointHook',
                         save_best='knn/top1', rule='greater'))
"""
from typing import Callable, Optional, Union

import torch
from mmpretrain.utils import get_ori_model

from mmssl_ext.models.memories import FeatureMemory, find_memories
from mmssl_ext.registry import DATASETS, LOOPS
from .knn_loop import KNNValLoop, _labels_of


@LOOPS.register_module()
class MemoryBankKNNValLoop(KNNValLoop):
    """Weighted kNN of the evaluation split against the bank of the model's
    (one) :class:`~mmssl_ext.models.memories.FeatureMemory`.

    Args:
        runner, dataloader, evaluator: as :class:`KNNValLoop` (the split to
            classify: test pipeline, packs ``sample_idx`` and ``gt_label``).
        feature (str | callable): query embedding, as
            :func:`~mmssl_ext.utils.extract.extract_features`; ``'neck'``
            (default) is the projection the bank stores (normalised by the
            vote).
        label_dataset (dict, optional): data set whose ``gt_label`` are the
            bank rows' labels, in index order (only labels are read). Default:
            ``runner.train_dataloader.dataset``.
        **kwargs: ``k`` (200, InvP), ``sigma`` (0.07, InvP), ``chunk_size``,
            ``num_classes``, ``fp16``: as :class:`KNNValLoop`.
    """

    def __init__(self,
                 runner,
                 dataloader,
                 evaluator,
                 feature: Union[str, Callable] = 'neck',
                 label_dataset: Optional[dict] = None,
                 **kwargs) -> None:
        super().__init__(runner, dataloader, evaluator, bank_dataloader=None,
                         feature=feature, **kwargs)
        self.label_dataset = label_dataset
        self._bank_labels = None

    def bank_labels(self) -> torch.Tensor:
        if self._bank_labels is None:
            ds = self.label_dataset
            if ds is None:
                ds = self.runner.train_dataloader.dataset
            elif isinstance(ds, dict):
                ds = DATASETS.build(ds)
            self._bank_labels = _labels_of(ds)
        return self._bank_labels

    def _bank(self):
        model = get_ori_model(self.runner.model)
        found = find_memories(model, FeatureMemory)
        if len(found) != 1:
            raise TypeError(f'MemoryBankKNNValLoop needs one feature memory '
                            f'in the model, {type(model).__name__} has '
                            f'{[n for n, _ in found] or "none"} (use '
                            'KNNValLoop otherwise)')
        name, memory = found[0]
        memory.check_length(self.bank_labels().numel(),
                            key=f'model.{name}.length')
        return memory.bank.detach(), self.bank_labels(), 'memory bank'


@LOOPS.register_module()
class MemoryBankKNNTestLoop(MemoryBankKNNValLoop):
    """:class:`MemoryBankKNNValLoop` for ``runner.test()``; set
    ``label_dataset`` (there is no training loop to read labels from)."""
    _stage = 'test'
