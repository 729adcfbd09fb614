from mmpretrain.evaluation.metrics import Accuracy

from mmssl_ext.registry import METRICS


@METRICS.register_module()
class KNNAccuracy(Accuracy):
    """Top-k accuracy of weighted-kNN predictions, logged as ``knn/top1``,
    ``knn/top5``.

    MMPretrain's :class:`Accuracy` on the ``pred_score`` that
    :class:`~mmssl_ext.engine.runners.KNNValLoop` writes into each data
    sample (the kNN vote weights). Use it as ``val_evaluator`` /
    ``test_evaluator`` together with that loop; ``save_best='knn/top1'`` in
    the checkpoint hook keeps the best-kNN checkpoint.
    """
    default_prefix = 'knn'

    def __init__(self, topk=(1, 5), **kwargs):
        super().__init__(topk=topk, **kwargs)
