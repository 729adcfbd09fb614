"""Weighted-kNN evaluation as an MMEngine val/test loop.

Self-supervised models have no ``predict`` mode in MMPretrain, so the usual
``ValLoop`` cannot evaluate them. These loops extract features of a labelled
*bank* split (usually the training images with the test pipeline) and of the
evaluation split, classify every evaluation sample by a weighted kNN vote
(:func:`mmssl_ext.evaluation.knn_classify`) and hand the scores to the
configured evaluator (:class:`~mmssl_ext.evaluation.KNNAccuracy`).

Config::

    val_dataloader = dict(...test split, test pipeline...)
    val_evaluator = dict(type='KNNAccuracy', topk=(1, 5))
    val_cfg = dict(type='KNNValLoop', bank_dataloader=dict(...train split,
                   test pipeline...), k=200, sigma=0.07)
    train_cfg = dict(by_epoch=True, max_epochs=..., val_interval=10)
"""
import time
from typing import Callable, Dict, Optional, Union

import numpy as np
import torch
from mmengine import dist
from mmengine.evaluator import Evaluator
from mmengine.logging import print_log
from mmengine.runner import ValLoop
from mmpretrain.structures import DataSample

from mmssl_ext.evaluation.functional import knn_classify
from mmssl_ext.registry import LOOPS
from mmssl_ext.utils.extract import extract_features


def _labels_of(dataset) -> torch.Tensor:
    if hasattr(dataset, 'get_gt_labels'):
        labels = dataset.get_gt_labels()
    else:
        labels = [dataset.get_data_info(i)['gt_label']
                  for i in range(len(dataset))]
    labels = np.asarray(labels)
    if labels.dtype == object or labels.ndim != 1:
        raise ValueError(f'kNN evaluation needs one integer gt_label per '
                         f'sample of {type(dataset).__name__}')
    return torch.as_tensor(labels.astype(np.int64))


@LOOPS.register_module()
class KNNValLoop(ValLoop):
    """Validation by weighted kNN over a labelled bank.

    Args:
        runner: the runner.
        dataloader (dict | DataLoader): the split to classify (test pipeline,
            must pack ``sample_idx`` and ``gt_label``).
        evaluator (dict | list | Evaluator): e.g. ``dict(type='KNNAccuracy')``.
        bank_dataloader (dict | DataLoader): labelled bank split.
        k (int): neighbours (200, as NPID / InvP / CLD).
        sigma (float): vote temperature ``exp(sim / sigma)`` (0.07).
        feature (str | callable): what to embed, see
            :func:`mmssl_ext.utils.extract.extract_features`
            (``'backbone'``: pooled last stage, the usual protocol).
        chunk_size (int): queries per similarity chunk.
        num_classes (int, optional): defaults to the bank's class count.
        fp16 (bool): unused, for ValLoop signature compatibility.
    """

    def __init__(self,
                 runner,
                 dataloader,
                 evaluator,
                 bank_dataloader,
                 k: int = 200,
                 sigma: float = 0.07,
                 feature: Union[str, Callable] = 'backbone',
                 chunk_size: int = 1024,
                 num_classes: Optional[int] = None,
                 fp16: bool = False) -> None:
        super().__init__(runner, dataloader, evaluator, fp16)
        if k < 1:
            raise ValueError(f'val_cfg.k must be >= 1, got {k}')
        if sigma <= 0:
            raise ValueError(f'val_cfg.sigma must be > 0, got {sigma}')
        if isinstance(bank_dataloader, dict):
            bank_dataloader = runner.build_dataloader(
                bank_dataloader, seed=runner.seed,
                diff_rank_seed=runner._randomness_cfg.get(
                    'diff_rank_seed', False))
        self.bank_dataloader = bank_dataloader
        self.k, self.sigma, self.feature = k, sigma, feature
        self.chunk_size, self.num_classes = chunk_size, num_classes

    #: the runner stage whose hooks :meth:`run` calls ('val' / 'test')
    _stage = 'val'

    def _bank(self):
        """``(bank features, their labels, its name in the log)``."""
        bank = extract_features(self.runner.model, self.bank_dataloader,
                                self.feature)
        return bank, _labels_of(self.bank_dataloader.dataset), 'bank'

    def _knn_scores(self):
        t0 = time.time()
        bank, bank_labels, name = self._bank()
        query = extract_features(self.runner.model, self.dataloader,
                                 self.feature).to(bank.device)
        labels = _labels_of(self.dataloader.dataset)
        num_classes = self.num_classes or int(
            max(bank_labels.max(), labels.max()) + 1)
        k = min(self.k, bank.size(0))
        if k < self.k:
            print_log(f'kNN: k={self.k} > {name} size {bank.size(0)}; using '
                      f'k={k}', logger='current')
        scores = knn_classify(bank, bank_labels, query, num_classes, k=k,
                              sigma=self.sigma, chunk_size=self.chunk_size)
        print_log(
            f'kNN: {name} {tuple(bank.shape)}, queries {tuple(query.shape)}, '
            f'k={k}, sigma={self.sigma}, {time.time() - t0:.1f}s',
            logger='current')
        return scores.cpu(), labels

    def _evaluate(self) -> Dict[str, float]:
        scores, labels = self._knn_scores()
        n = scores.size(0)
        world, rank = dist.get_world_size(), dist.get_rank()
        # Every rank holds all scores; each processes a strided share padded
        # like DefaultSampler, so the evaluator's ordered collection sees
        # every sample exactly once after truncation to n.
        total = -(-n // world) * world
        order = torch.arange(total) % n
        for start in range(0, total // world, 256):
            ids = order[rank::world][start:start + 256]
            self.evaluator.process([
                DataSample().set_gt_label(int(labels[i])).set_pred_score(
                    scores[i]) for i in ids.tolist()
            ], None)
        return self.evaluator.evaluate(n)

    def run(self) -> dict:
        self.runner.call_hook(f'before_{self._stage}')
        self.runner.call_hook(f'before_{self._stage}_epoch')
        metrics = self._evaluate()
        self.runner.call_hook(f'after_{self._stage}_epoch', metrics=metrics)
        self.runner.call_hook(f'after_{self._stage}')
        return metrics


@LOOPS.register_module()
class KNNTestLoop(KNNValLoop):
    """:class:`KNNValLoop` for ``runner.test()`` (``tools/test.py``)."""
    _stage = 'test'
