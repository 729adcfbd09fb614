from .diagnostics import (cluster_quality, group_purity,
                          pseudo_label_quality, same_label_fraction)
from .knn_classify import knn_classify, topk_accuracy

__all__ = [
    'knn_classify', 'topk_accuracy', 'cluster_quality', 'same_label_fraction',
    'group_purity', 'pseudo_label_quality'
]
