from .knn import knn_search, pairwise_topk_excluding_self

__all__ = ['knn_search', 'pairwise_topk_excluding_self']
from .kmeans import KMeansResult, batch_kmeans, kmeans  # noqa: F401
from .instance_mix import InstanceMixer, MixParams  # noqa: F401
from .neg_sampling import build_neg_sampler, sample_positives  # noqa: F401
