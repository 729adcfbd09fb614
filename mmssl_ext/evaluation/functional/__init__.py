from .diagnostics import (cluster_quality, group_purity,
                          pseudo_label_quality, same_label_fraction)
from .knn_classify import knn_classify, topk_accuracy
from .probes import few_label_knn_top1, knn_top1, linear_probe_top1

__all__ = [
    'knn_classify', 'topk_accuracy', 'knn_top1', 'few_label_knn_top1',
    'linear_probe_top1', 'cluster_quality', 'same_label_fraction',
    'group_purity', 'pseudo_label_quality'
]
