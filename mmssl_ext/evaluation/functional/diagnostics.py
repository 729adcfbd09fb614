"""Diagnostics of a method's mechanism against ground-truth labels (used
for monitoring only, never for training): how good are the pseudo-labels,
the propagated positives, the in-batch groups.

All take integer tensors and return Python floats, on any device.
"""
from typing import Dict, Optional

import torch


def _entropy(counts: torch.Tensor) -> torch.Tensor:
    p = counts[counts > 0].double()
    p = p / p.sum()
    return -(p * p.log()).sum()


def cluster_quality(pred: torch.Tensor,
                    true: torch.Tensor) -> Dict[str, float]:
    """Agreement of cluster assignments ``pred`` with labels ``true``
    (both (N,) non-negative ints):

    * ``nmi``: normalised mutual information, ``I / ((H(pred) + H(true)) /
      2)`` (arithmetic normalisation, scikit-learn's default); 1 when the
      partitions are identical up to renaming, ~0 when independent; 1 when
      both are a single cluster, 0 when only one is;
    * ``purity``: fraction of samples whose cluster's majority label is
      their label (1 for a perfect or a singleton clustering: read it with
      ``nmi`` and the cluster count);
    * ``num_nonempty``: clusters with at least one member.
    """
    pred = pred.view(-1).long().cpu()
    true = true.view(-1).long().cpu()
    if pred.numel() != true.numel():
        raise ValueError(f'{pred.numel()} cluster labels for '
                         f'{true.numel()} true labels')
    if pred.numel() == 0:
        raise ValueError('cluster_quality of an empty assignment')
    _, p = torch.unique(pred, return_inverse=True)
    _, t = torch.unique(true, return_inverse=True)
    kp, kt = int(p.max()) + 1, int(t.max()) + 1
    cont = torch.bincount(p * kt + t, minlength=kp * kt).view(kp, kt)
    n = float(pred.numel())
    hp, ht = _entropy(cont.sum(1)), _entropy(cont.sum(0))
    nz = cont > 0
    pij = cont[nz].double() / n
    outer = (cont.sum(1, keepdim=True) * cont.sum(0, keepdim=True))[nz]
    mi = (pij * (pij * n * n / outer.double()).log()).sum()
    denom = (hp + ht) / 2
    nmi = 1.0 if float(denom) == 0.0 else float((mi / denom).clamp(0, 1))
    purity = float(cont.max(1).values.sum()) / n
    return dict(nmi=nmi, purity=purity, num_nonempty=float(kp))


def same_label_fraction(anchor: torch.Tensor, others: torch.Tensor,
                        true: torch.Tensor,
                        mask: Optional[torch.Tensor] = None) -> float:
    """Fraction of the entries ``others`` (B, M) bank indices -- of the
    valid ones when ``mask`` (B, M) is given -- whose label ``true[j]``
    equals their anchor's label ``true[anchor[b]]`` (``anchor`` (B,))."""
    true = true.to(others.device)
    same = true[others] == true[anchor.to(others.device)].view(-1, 1)
    if mask is not None:
        same = same[mask]
    if same.numel() == 0:
        return float('nan')
    return same.float().mean().item()


def group_purity(groups: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Purity of a grouping of a batch: the fraction of samples that carry
    their group's majority label (``groups``, ``labels``: (B,) ints), as a
    0-dim float tensor on ``groups``' device. Computed with (B, B)
    comparisons (static shapes): no host synchronisation, so it can be
    logged every iteration."""
    g = groups.view(-1)
    c = labels.view(-1).to(g.device)
    if g.numel() == 0:
        return torch.zeros((), device=g.device)
    same_g = g.view(-1, 1) == g.view(1, -1)
    # samples of i's group that carry i's label
    agree = (same_g & (c.view(-1, 1) == c.view(1, -1))).sum(1)
    # the group's majority count, and one representative sample holding it
    top = torch.where(same_g, agree.view(1, -1),
                      torch.zeros_like(same_g, dtype=agree.dtype)).amax(1)
    cand = agree == top
    earlier = torch.ones_like(same_g).tril(-1)
    rep = cand & ~(same_g & earlier & cand.view(1, -1)).any(1)
    return (agree * rep).sum().float() / g.numel()


def pseudo_label_quality(pseudo: torch.Tensor,
                         true: torch.Tensor) -> Dict[str, float]:
    """``pseudo_nmi`` and ``pseudo_purity`` (:func:`cluster_quality`) of
    pseudo-labels against true labels, over the samples that have a
    pseudo-label (``>= 0``); empty dict when none has."""
    pseudo, true = pseudo.view(-1).cpu(), true.view(-1).cpu()
    if pseudo.numel() != true.numel():
        raise ValueError(f'{pseudo.numel()} pseudo-labels for '
                         f'{true.numel()} true labels (model.memory.length '
                         'must equal the training set length)')
    has = pseudo >= 0
    if not bool(has.any()):
        return {}
    q = cluster_quality(pseudo[has], true[has])
    return dict(pseudo_nmi=q['nmi'], pseudo_purity=q['purity'])
