from .kmeans import KMeansResult, batch_kmeans, kmeans
from .knn import knn_search, pairwise_topk_excluding_self

__all__ = [
    'KMeansResult', 'batch_kmeans', 'kmeans', 'knn_search',
    'pairwise_topk_excluding_self'
]
