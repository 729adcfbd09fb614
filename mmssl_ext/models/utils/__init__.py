from .instance_mix import InstanceMixer, MixParams
from .kmeans import KMeansResult, batch_kmeans, kmeans
from .knn import knn_search, pairwise_topk_excluding_self
from .neg_sampling import build_neg_sampler, sample_positives

__all__ = [
    'InstanceMixer', 'MixParams', 'KMeansResult', 'batch_kmeans', 'kmeans',
    'knn_search', 'pairwise_topk_excluding_self', 'build_neg_sampler',
    'sample_positives'
]
