from .knn_classify import knn_classify, topk_accuracy

__all__ = ['knn_classify', 'topk_accuracy']
