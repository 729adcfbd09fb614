"""BSIM's joint-similarity (spurious-positive) loss (configs/bsim/README.md).

A mixture ``m_i`` of sources ``i`` (weight ``lam``) and ``j(i)`` (weight
``1 - lam``) is pulled towards the *other* view of each source, weighted by
the source's share:

* contrastive flavour (SimCLR / MoCo), with InfoNCE ``l(u, v+, negatives)``::

      L = lam * l(m_i, k_i) + (1 - lam) * l(m_i, k_j(i))

  Each term is a softmax over its own positive and the shared negatives
  (the MoCo queue, or the in-batch embeddings minus both sources, given by
  ``neg_mask``); the other source's key is not in the denominator.
* distance flavour (BYOL / SimSiam), ``D(p, z) = 2 - 2 cos(p, z)`` by
  default::

      L = lam * D(h(m_i), sg(t_i)) + (1 - lam) * D(h(m_i), sg(t_j(i)))

The cores are pure functions of tensors. The algorithms pass their own
framework's criterion (``ContrastiveHead.loss``, the head's
``CosineSimilarityLoss``) so temperature and distance stay the framework's.
"""
from typing import Callable, Optional, Union

import torch
import torch.nn.functional as F


Lam = Union[float, torch.Tensor]


def infonce(pos: torch.Tensor, neg: torch.Tensor,
            temperature: float = 0.1) -> torch.Tensor:
    """Mean over rows of ``-log softmax([pos, neg] / T)[0]``.

    ``pos`` (M, 1), ``neg`` (M, K); ``-inf`` entries of ``neg`` are excluded
    negatives.
    """
    logits = torch.cat([pos, neg], dim=1) / temperature
    return (torch.logsumexp(logits, dim=1) - logits[:, 0]).mean()


def cosine_distance(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over rows of ``2 - 2 cos(pred, target)``."""
    return (2 - 2 * F.cosine_similarity(pred, target, dim=-1)).mean()


def joint_contrastive_loss(query: torch.Tensor,
                           key_a: torch.Tensor,
                           key_b: torch.Tensor,
                           negatives: torch.Tensor,
                           lam: Lam,
                           temperature: float = 0.1,
                           neg_mask: Optional[torch.Tensor] = None,
                           criterion: Optional[Callable] = None
                           ) -> torch.Tensor:
    """Joint InfoNCE of mixtures against both sources' other views.

    Args:
        query (Tensor): (M, D) mixture embeddings, L2-normalised (the only
            input that carries gradient in BSIM).
        key_a (Tensor): (M, D) normalised other-view embedding of source
            ``i`` (weight ``lam``).
        key_b (Tensor): (M, D) the same for source ``j(i)`` (``1 - lam``).
        negatives (Tensor): (K, D) normalised negative keys, shared by all
            rows.
        lam (float | Tensor): one scalar per batch.
        temperature (float): used by the default criterion only.
        neg_mask (Tensor, optional): (M, K) bool, True where
            ``negatives[k]`` must not be a negative of row ``m`` (both
            sources' own embeddings in SimCLR).
        criterion (callable, optional): ``criterion(pos (M,1), neg (M,K))``
            -> scalar, e.g. ``ContrastiveHead.loss``. Defaults to
            :func:`infonce` with ``temperature``. Masked negatives enter it as
            ``-inf`` logits, so it must be a plain softmax cross-entropy.

    Returns:
        Tensor: ``lam * l(q, k_a) + (1 - lam) * l(q, k_b)``.
    """
    if criterion is None:

        def criterion(pos, neg):
            return infonce(pos, neg, temperature)

    pos_a = (query * key_a).sum(dim=1, keepdim=True)
    pos_b = (query * key_b).sum(dim=1, keepdim=True)
    neg = query @ negatives.t()
    if neg_mask is not None:
        neg = neg.masked_fill(neg_mask, float('-inf'))
    return lam * criterion(pos_a, neg) + (1 - lam) * criterion(pos_b, neg)


def joint_distance_loss(pred: torch.Tensor,
                        target_a: torch.Tensor,
                        target_b: torch.Tensor,
                        lam: Lam,
                        distance: Optional[Callable] = None) -> torch.Tensor:
    """Joint distance of predicted mixtures to both sources' targets.

    Args:
        pred (Tensor): (M, D) predictor output for the mixtures.
        target_a (Tensor): (M, D) target of source ``i`` (stop-gradient is
            applied here).
        target_b (Tensor): (M, D) target of source ``j(i)``.
        lam (float | Tensor): one scalar per batch.
        distance (callable, optional): ``distance(pred, target)`` -> scalar
            mean over rows; defaults to :func:`cosine_distance`
            (``2 - 2 cos``).

    Returns:
        Tensor: ``lam * D(p, sg(t_a)) + (1 - lam) * D(p, sg(t_b))``.
    """
    if distance is None:
        distance = cosine_distance
    return lam * distance(pred, target_a.detach()) + (1 - lam) * distance(
        pred, target_b.detach())
