"""Frozen-feature probes of a representation: weighted kNN with a full or a
few-label bank, and a linear probe. They take features already extracted
(``mmssl_ext.utils.extract.extract_features``), so one extraction serves
every probe; the digits benchmark and ``tools/demo.py`` report all three
(benchmark helpers: not part of the library).
"""
from typing import Optional

import torch
import torch.nn.functional as F

from mmssl_ext.evaluation.functional import knn_classify


def _num_classes(*labels: torch.Tensor) -> int:
    return int(max(int(y.max()) for y in labels)) + 1


def knn_top1(bank: torch.Tensor, bank_labels: torch.Tensor,
             query: torch.Tensor, query_labels: torch.Tensor, k: int = 200,
             sigma: float = 0.07) -> float:
    """Weighted-kNN top-1 (%) of ``query`` against a labelled ``bank``
    (``k`` is clipped to the bank size)."""
    nc = _num_classes(bank_labels, query_labels)
    scores = knn_classify(bank, bank_labels, query, nc,
                          k=min(k, bank.size(0)), sigma=sigma)
    return (scores.argmax(1).cpu() == query_labels.cpu()).float().mean(
    ).item() * 100


def few_label_knn_top1(bank: torch.Tensor, bank_labels: torch.Tensor,
                       query: torch.Tensor, query_labels: torch.Tensor,
                       per_class: int = 10, draws: int = 5, seed: int = 0,
                       k: int = 200, sigma: float = 0.07) -> dict:
    """Weighted-kNN top-1 (%) with a bank of only ``per_class`` labelled
    images of every class, drawn ``draws`` times (draw ``d`` uses
    ``seed + d``, the same draws for every model compared); returns the
    mean, the standard deviation and the per-draw values."""
    if per_class < 1 or draws < 1:
        raise ValueError(f'per_class={per_class} and draws={draws} must be '
                         '>= 1')
    labels = bank_labels.cpu()
    classes = torch.unique(labels)
    counts = torch.stack([(labels == c).sum() for c in classes])
    if int(counts.min()) < per_class:
        raise ValueError(f'few-label kNN: a class has only '
                         f'{int(counts.min())} bank images, fewer than '
                         f'per_class={per_class}')
    vals = []
    for d in range(draws):
        g = torch.Generator().manual_seed(seed + d)
        pick = torch.cat([
            torch.nonzero(labels == c).flatten()[torch.randperm(
                int(n), generator=g)[:per_class]]
            for c, n in zip(classes, counts)
        ])
        vals.append(knn_top1(bank[pick], labels[pick], query, query_labels,
                             k=k, sigma=sigma))
    v = torch.tensor(vals)
    return dict(mean=v.mean().item(),
                sd=v.std().item() if draws > 1 else 0.0, values=vals)


def linear_probe_top1(train_x: torch.Tensor, train_y: torch.Tensor,
                      test_x: torch.Tensor, test_y: torch.Tensor,
                      weight_decay: float = 1e-4, max_iter: int = 200,
                      num_classes: Optional[int] = None) -> float:
    """Top-1 (%) of a linear classifier on frozen features: standardised
    with the training statistics, full-batch L-BFGS (strong Wolfe) on the
    cross-entropy plus ``weight_decay * ||W||^2``; no augmentation."""
    train_x, test_x = train_x.float().cpu(), test_x.float().cpu()
    train_y, test_y = train_y.long().cpu(), test_y.long().cpu()
    nc = num_classes or _num_classes(train_y, test_y)
    mean, std = train_x.mean(0), train_x.std(0)
    # a dimension (almost) constant on the training set (e.g. a border
    # pixel that is always black) must not be blown up on the test set
    std = std.clamp(min=1e-3 * float(std.max()) + 1e-12)
    tx, vx = (train_x - mean) / std, (test_x - mean) / std
    lin = torch.nn.Linear(tx.size(1), nc)
    with torch.no_grad():
        # zero start (the convex problem's usual one): a dimension that is
        # constant on the training set gets no gradient and keeps weight 0,
        # so it cannot swamp the test logits
        lin.weight.zero_()
        lin.bias.zero_()
    opt = torch.optim.LBFGS(lin.parameters(), lr=1, max_iter=max_iter,
                            line_search_fn='strong_wolfe')

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(lin(tx), train_y) + \
            weight_decay * lin.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return (lin(vx).argmax(1) == test_y).float().mean().item() * 100
