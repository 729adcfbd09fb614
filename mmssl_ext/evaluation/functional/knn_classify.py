"""Weighted k-nearest-neighbour classification of features (the kNN protocol
of NPID / InvP / CLD / DINO): cosine similarity against a labelled bank, the
top-K neighbours vote for their label with weight ``exp(sim / sigma)``.

Built on :func:`mmssl_ext.models.utils.knn.knn_search` (chunked; faiss when
available), so memory stays bounded whatever the bank size; queries are
processed in chunks of ``chunk_size`` (>= 1, also when there are fewer test
samples than a chunk - MMSelfSup's ``num_test // 100`` chunking broke there).
"""
from typing import Dict, Sequence

import torch
import torch.nn.functional as F

from mmssl_ext.models.utils.knn import knn_search


def knn_classify(train_feats: torch.Tensor,
                 train_labels: torch.Tensor,
                 test_feats: torch.Tensor,
                 num_classes: int,
                 k: int = 200,
                 sigma: float = 0.07,
                 chunk_size: int = 1024,
                 backend: str = 'auto') -> torch.Tensor:
    """Class scores of every test feature by weighted kNN vote.

    Args:
        train_feats (Tensor): (N, D) bank features (normalised here).
        train_labels (Tensor): (N,) integer labels in ``[0, num_classes)``.
        test_feats (Tensor): (Q, D) query features (normalised here).
        num_classes (int): number of classes.
        k (int): neighbours; clipped to N with no error only if
            ``k > N`` is impossible to satisfy - we raise instead, naming k.
        sigma (float): temperature of the vote weights ``exp(sim / sigma)``.
        chunk_size (int): queries per chunk.

    Returns:
        Tensor: (Q, num_classes) summed vote weights.
    """
    if sigma <= 0:
        raise ValueError(f'kNN sigma (temperature) must be > 0, got {sigma}')
    if k < 1:
        raise ValueError(f'kNN k must be >= 1, got {k}')
    if k > train_feats.size(0):
        raise ValueError(f'kNN k={k} is larger than the bank '
                         f'({train_feats.size(0)} train samples): lower k')
    if train_labels.numel() != train_feats.size(0):
        raise ValueError(f'{train_labels.numel()} train labels for '
                         f'{train_feats.size(0)} train features')
    if train_labels.numel() and (train_labels.min() < 0
                                 or train_labels.max() >= num_classes):
        raise ValueError('train labels must lie in [0, num_classes='
                         f'{num_classes})')
    train_feats = F.normalize(train_feats.float(), dim=1)
    test_feats = F.normalize(test_feats.float(), dim=1)
    sims, idx = knn_search(test_feats, train_feats, k,
                           query_chunk=chunk_size, backend=backend)
    weights = (sims / sigma).exp()
    labels = train_labels.to(idx.device)[idx]  # (Q, k)
    scores = torch.zeros(test_feats.size(0), num_classes,
                         device=weights.device, dtype=weights.dtype)
    scores.scatter_add_(1, labels, weights)
    return scores


def topk_accuracy(scores: torch.Tensor, labels: torch.Tensor,
                  topk: Sequence[int] = (1, 5)) -> Dict[str, float]:
    """Top-k accuracies in percent; k larger than the class count counts
    every sample as correct (as MMPretrain's Accuracy does)."""
    out = {}
    labels = labels.to(scores.device).view(-1, 1)
    for k in topk:
        pred = scores.topk(min(k, scores.size(1)), dim=1).indices
        out[f'top{k}'] = (pred == labels).any(1).float().mean().item() * 100
    return out
