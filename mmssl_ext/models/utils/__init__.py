from .kmeans import KMeansResult, batch_kmeans, kmeans
from .knn import knn_search

__all__ = ['KMeansResult', 'batch_kmeans', 'kmeans', 'knn_search']
