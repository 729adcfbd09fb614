"""Invariance Propagation (InvP) loss: pure functions and a module.

Wang, Liu, Guo, Sun, "Unsupervised Representation Learning by Invariance
Propagation", NeurIPS 2020. Formulas follow the authors' code (the defaults)
with the paper's variants as options (configs/invp/README.md):

* Instance term over the background set ``N_M(i)`` (the top-M bank entries
  most similar to ``v_i``)::

      L_ins = -log( S_ii / sum_{j in N_M(i)} S_ij + eps ),
      S_ij = exp(v_i . m_j / t)

  (code; ``instance_denominator='paper'`` sums over ``N_M(i) U {i}``,
  which differs only when the anchor is not among the top-M).

* Positive discovery: candidates reached in ``num_layers`` hops of the
  per-sample neighbour table ``neigh`` (k entries per row):
  ``'concat'`` - the authors' list concatenation (sum_l k^l entries,
  duplicates and the anchor kept), or ``'bfs'`` - a real breadth-first
  expansion (unique nodes at graph distance 1..L, anchor excluded).
* Hard positives ``N^h(i)``: the ``n_pos`` candidates *least* similar to
  ``v_i`` (``hard=False``: the most similar, the ``--not_hardpos`` ablation).
* Invariance term::

      L_inv = -log( sum_{p in N^h(i)} S_ip / D_i + eps )

  with ``D_i`` by ``denominator``:
  ``'exclusive'`` (code default, ``exclusive=1``): sum_{N_M(i)} S_ij - S_ii;
  ``'inclusive'`` (code, ``exclusive=0``): sum_{N_M(i)} S_ij;
  ``'paper'``: sum over ``B(i) = N^h(i) U (N_M(i) - N(i))``, i.e. the hard
  positives plus the top-M entries that are neither candidates ``N(i)`` nor
  the anchor itself (our reading: the anchor is a positive of itself).

* Ramp-up of the invariance weight: ``'binary'`` (code default)
  ``1[epoch > T]``, ``'gaussian'`` ``exp(-5 (1 - epoch/T)^2)`` (clipped at
  1 after T), ``'none'`` always 1; with ``epoch`` the authors' **1-based**
  epoch. :func:`invp_ramp_up` takes MMEngine's 0-based epoch and adds 1.

Numerics: the authors exponentiate raw logits; we subtract the per-row
maximum background logit first (the ratios are unchanged), so small
temperatures cannot overflow. ``eps`` (1e-7, the authors') is added to the
ratio inside the log as in their code.
"""
import math
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from mmssl_ext.registry import MODELS
from ..utils.knn import knn_search

PROPAGATIONS = ('concat', 'bfs')
DENOMINATORS = ('exclusive', 'inclusive', 'paper')
RAMP_UPS = ('binary', 'gaussian', 'none')


# --------------------------------------------------------------------------
# schedule
# --------------------------------------------------------------------------
def invp_ramp_up(epoch: int,
                 mode: str = 'binary',
                 ramp_epochs: float = 30,
                 gaussian_weight: float = 5.0) -> float:
    """Weight ``w(epoch)`` of the invariance term.

    Args:
        epoch (int): MMEngine's 0-based epoch (the epoch being trained).
            The authors count from 1, so their ``i_epoch = epoch + 1``.
        mode (str): ``'binary'``: ``1[i_epoch > ramp_epochs]`` (the term is
            off during the first ``ramp_epochs`` epochs); ``'gaussian'``:
            ``exp(-gaussian_weight * max(1 - i_epoch / ramp_epochs, 0)^2)``;
            ``'none'``: 1.
        ramp_epochs (float): ``T`` (30 in the paper).
        gaussian_weight (float): 5 in the authors' code.
    """
    i_epoch = epoch + 1
    if mode == 'none':
        return 1.0
    if mode == 'binary':
        return float(i_epoch > ramp_epochs)
    if ramp_epochs <= 0:
        return 1.0
    m = max(1.0 - i_epoch / ramp_epochs, 0.0)**2
    return math.exp(-gaussian_weight * m)


# --------------------------------------------------------------------------
# propagation
# --------------------------------------------------------------------------
def propagate_concat(neigh: torch.Tensor, idx: torch.Tensor,
                     num_layers: int) -> torch.Tensor:
    """The authors' propagation: concatenate the neighbour lists hop by hop.

    Hop 1 is ``neigh[i]`` (k entries); hop l is ``neigh`` of every entry of
    hop l-1, in order. Duplicates and the anchor itself are kept.

    Args:
        neigh (Tensor): (N, k) neighbour table (long).
        idx (Tensor): (B,) anchor indices.
        num_layers (int): ``diffusion_layer`` L >= 1.

    Returns:
        Tensor: (B, sum_{l=1..L} k^l) candidate indices.
    """
    level = neigh[idx]  # (B, k)
    levels = [level]
    for _ in range(num_layers - 1):
        level = neigh[level].flatten(1)  # (B, k^l)
        levels.append(level)
    return torch.cat(levels, 1)


def propagate_bfs(neigh: torch.Tensor, idx: torch.Tensor,
                  num_layers: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Breadth-first expansion: the *set* of nodes at graph distance 1..L
    from the anchor in the directed kNN graph ``i -> neigh[i]``, without
    the anchor and without duplicates.

    Returns:
        tuple(Tensor, Tensor): (B, C) candidate indices and a (B, C) bool
        mask of valid entries, ``C = sum_l k^l`` (the most a row can reach);
        invalid slots hold the anchor index. Valid entries of a row are in
        ascending index order.
    """
    cand = propagate_concat(neigh, idx, num_layers)
    srt, _ = cand.sort(dim=1)
    first = torch.ones_like(srt, dtype=torch.bool)
    first[:, 1:] = srt[:, 1:] != srt[:, :-1]
    valid = first & (srt != idx.view(-1, 1))
    # valid entries first (stable: keeps ascending order), anchor elsewhere
    order = torch.argsort((~valid).to(torch.int8), dim=1, stable=True)
    srt = srt.gather(1, order)
    valid = valid.gather(1, order)
    srt = torch.where(valid, srt, idx.view(-1, 1).expand_as(srt))
    return srt, valid


def propagate(neigh: torch.Tensor, idx: torch.Tensor, num_layers: int,
              mode: str = 'concat'
              ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """The candidates of ``mode`` (``'concat'``: :func:`propagate_concat`,
    ``'bfs'``: :func:`propagate_bfs`) and their valid mask (None for
    ``'concat'``, where every entry counts)."""
    if mode == 'concat':
        return propagate_concat(neigh, idx, num_layers), None
    return propagate_bfs(neigh, idx, num_layers)


def select_positives(cand_logits: torch.Tensor,
                     n_pos: int,
                     hard: bool = True,
                     valid: Optional[torch.Tensor] = None
                     ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pick ``n_pos`` positives among the candidates of each row.

    Args:
        cand_logits (Tensor): (B, C) similarities (any monotone scale) of
            each anchor to its candidates.
        n_pos (int): positives per anchor; ``min(n_pos, C)`` are taken (and
            at most the number of valid candidates of a row).
        hard (bool): ``True`` the least similar (hard positives), ``False``
            the most similar (easiest, ablation).
        valid (Tensor, optional): (B, C) bool mask of real candidates.

    Returns:
        tuple: (B, P) selected logits, (B, P) bool mask of real selections,
        (B, P) column indices into the candidate list.
    """
    p = min(n_pos, cand_logits.size(1))
    key = cand_logits.detach()
    if valid is not None:  # invalid slots come last, masked below
        key = key.masked_fill(~valid, float('inf') if hard else float('-inf'))
    _, sel = key.topk(p, dim=1, largest=not hard)
    mask = (torch.ones_like(sel, dtype=torch.bool)
            if valid is None else valid.gather(1, sel))
    return cand_logits.gather(1, sel), mask, sel


# --------------------------------------------------------------------------
# loss terms (per-sample vectors)
# --------------------------------------------------------------------------
def invp_instance_loss(self_logits: torch.Tensor,
                       bg_logits: torch.Tensor,
                       eps: float = 1e-7,
                       add_self: Optional[torch.Tensor] = None
                       ) -> torch.Tensor:
    """``-log(S_ii / sum_{j in top-M} S_ij + eps)`` per sample.

    Args:
        self_logits (Tensor): (B,) ``v_i . m_i / t``.
        bg_logits (Tensor): (B, M) ``v_i . m_j / t`` over the background set.
        eps (float): added to the ratio (authors: 1e-7); 0 gives the exact
            log-softmax.
        add_self (Tensor, optional): (B,) bool, True where ``S_ii`` must be
            added to the denominator (the paper's ``N_M(i) U {i}`` when the
            anchor is not among the top-M).

    Returns:
        Tensor: (B,) losses.
    """
    if add_self is not None:
        extra = torch.where(add_self, self_logits,
                            torch.full_like(self_logits, float('-inf')))
        bg_logits = torch.cat([bg_logits, extra.unsqueeze(1)], 1)
    lse = torch.logsumexp(bg_logits, dim=1)
    if eps == 0:
        return lse - self_logits
    return -(torch.exp(self_logits - lse) + eps).log()


def invp_invariance_loss(pos_logits: torch.Tensor,
                         bg_logits: torch.Tensor,
                         self_logits: torch.Tensor,
                         denominator: str = 'exclusive',
                         pos_mask: Optional[torch.Tensor] = None,
                         bg_keep: Optional[torch.Tensor] = None,
                         eps: float = 1e-7) -> torch.Tensor:
    """``-log(sum_{p in N^h(i)} S_ip / D_i + eps)`` per sample.

    Args:
        pos_logits (Tensor): (B, P) logits of the selected positives.
        bg_logits (Tensor): (B, M) logits of the background set.
        self_logits (Tensor): (B,) the anchor's own logit ``v_i . m_i / t``.
        denominator (str): ``'exclusive'`` / ``'inclusive'`` / ``'paper'``
            (module docstring).
        pos_mask (Tensor, optional): (B, P) real positives (BFS padding is
            False); masked entries count in neither sum, and a row with no
            positive at all gets loss 0 (no gradient).
        bg_keep (Tensor, optional): (B, M) for ``'paper'``: True for the
            background members that are not in ``N(i) U {i}``. Required for
            ``'paper'``.
        eps (float): added to the ratio inside the log (authors: 1e-7).

    Returns:
        Tensor: (B,) losses.
    """
    # common shift: the ratios are invariant to it, exp() cannot overflow
    shift = torch.cat([bg_logits, pos_logits], 1).detach().amax(1,
                                                                keepdim=True)
    pos = torch.exp(pos_logits - shift)
    if pos_mask is not None:
        pos = pos * pos_mask
    num = pos.sum(1)
    bg = torch.exp(bg_logits - shift)
    if denominator == 'paper':
        den = num + (bg * bg_keep).sum(1)
    else:
        den = bg.sum(1)
        if denominator == 'exclusive':
            den = den - torch.exp(self_logits - shift.squeeze(1))
    den = den.clamp_min(torch.finfo(den.dtype).tiny)
    if pos_mask is None:
        return -(num / den + eps).log()
    # a row without any positive (BFS from an all-zero table row that
    # points at the anchor itself) contributes 0 and no gradient
    has_pos = pos_mask.any(1)
    num = torch.where(has_pos, num, den.detach())
    return -(num / den + eps).log() * has_pos


def background_outside(bg_idx: torch.Tensor, cand: torch.Tensor,
                       idx: torch.Tensor) -> torch.Tensor:
    """(B, M) True where a background index is neither a propagation
    candidate (``N(i)``, any hop) nor the anchor: the ``N_M(i) - N(i)`` part
    of the paper's ``B(i)``. BFS padding slots hold the anchor, so they need
    no separate mask."""
    srt, _ = torch.cat([cand, idx.view(-1, 1)], 1).sort(dim=1)
    pos = torch.searchsorted(srt, bg_idx.contiguous())
    pos = pos.clamp_max(srt.size(1) - 1)
    return srt.gather(1, pos) != bg_idx


def feature_grad(bank: torch.Tensor, index: torch.Tensor,
                 logit_grad: torch.Tensor, temperature: float) -> torch.Tensor:
    """Gradient with respect to the features ``v`` of a scalar whose
    gradient with respect to the logits ``l_bj = v_b . bank[index[b, j]] /
    t`` is ``logit_grad``: ``sum_j logit_grad[b, j] bank[index[b, j]] / t``.

    The same numbers as the authors' ``grad_logits @ bank`` over the dense
    ``B x N`` gradient, read from the referenced rows only (a weighted
    gather-sum, ``F.embedding_bag``), without a ``B x J x D`` copy.

    Args:
        bank (Tensor): (N, D).
        index (Tensor): (B, J) long bank rows (repeats allowed).
        logit_grad (Tensor): (B, J).
        temperature (float): ``t``.

    Returns:
        Tensor: (B, D), in ``bank``'s dtype.
    """
    out = F.embedding_bag(index, bank,
                          per_sample_weights=logit_grad.to(bank.dtype),
                          mode='sum')
    return out / temperature


class _WithFeatureGrad(torch.autograd.Function):
    """``value`` (a detached scalar loss term) whose gradient with respect
    to ``feats`` is the precomputed ``jac`` (B, D)."""

    @staticmethod
    def forward(ctx, value, feats, jac):
        ctx.save_for_backward(jac)
        ctx.feats_dtype = feats.dtype
        return value.clone()

    @staticmethod
    def backward(ctx, grad):
        jac, = ctx.saved_tensors
        return None, (grad * jac).to(ctx.feats_dtype), None


# --------------------------------------------------------------------------
# module
# --------------------------------------------------------------------------
@MODELS.register_module()
class InvPLoss(nn.Module):
    """Both InvP terms for a batch against a memory bank.

    Args:
        temperature (float): ``t`` (0.07 code default; 0.2 in the README
            commands).
        n_background (int): M, the background-set size (4096).
        diffusion_layer (int): hops L of the propagation (3).
        n_pos (int): positives per anchor (50; 20 for CIFAR).
        hard_positive (bool): least similar candidates (True) or most
            similar (False, ablation).
        denominator (str): ``'exclusive'`` (code default), ``'inclusive'``
            (code's ``exclusive=0``) or ``'paper'`` (``B(i)``).
        propagation (str): ``'concat'`` (authors) or ``'bfs'``.
        eps (float): added inside the logs (1e-7, authors).
        knn_backend (str): backend of the background-set search
            (:func:`~mmssl_ext.models.utils.knn.knn_search`): ``'torch'``
            (default: ``torch.topk``, the authors' selection and tie order,
            any device), ``'faiss'`` or ``'auto'`` (faiss for CPU tensors
            when installed).
        instance_denominator (str): ``'code'`` (default): the instance
            term's denominator is the top-M sum only, even when the anchor
            is not in the top-M; ``'paper'``: ``N_M(i) U {i}``, i.e.
            ``S_ii`` is added when the anchor is outside the top-M.
    """

    def __init__(self,
                 temperature: float = 0.07,
                 n_background: int = 4096,
                 diffusion_layer: int = 3,
                 n_pos: int = 50,
                 hard_positive: bool = True,
                 denominator: str = 'exclusive',
                 propagation: str = 'concat',
                 eps: float = 1e-7,
                 knn_backend: str = 'torch',
                 instance_denominator: str = 'code'):
        super().__init__()
        for key, value, ok, want in (
                ('temperature', temperature, temperature > 0, '> 0'),
                ('n_background', n_background, n_background >= 1, '>= 1'),
                ('diffusion_layer', diffusion_layer, diffusion_layer >= 1,
                 '>= 1'),
                ('n_pos', n_pos, n_pos >= 1, '>= 1'),
                ('eps', eps, eps >= 0, '>= 0'),
                ('denominator', denominator, denominator in DENOMINATORS,
                 f'one of {DENOMINATORS}'),
                ('propagation', propagation, propagation in PROPAGATIONS,
                 f'one of {PROPAGATIONS}'),
                ('knn_backend', knn_backend,
                 knn_backend in ('auto', 'torch', 'faiss'),
                 "'auto', 'torch' or 'faiss'"),
                ('instance_denominator', instance_denominator,
                 instance_denominator in ('code', 'paper'),
                 "'code' or 'paper'")):
            if not ok:
                raise ValueError(f'{key} must be {want}, got {value!r}')
        self.temperature = temperature
        self.n_background = n_background
        self.diffusion_layer = diffusion_layer
        self.n_pos = n_pos
        self.hard_positive = hard_positive
        self.denominator = denominator
        self.propagation = propagation
        self.eps = eps
        self.knn_backend = knn_backend
        self.instance_denominator = instance_denominator

    def forward(self,
                feats: torch.Tensor,
                idx: torch.Tensor,
                bank: torch.Tensor,
                neigh: torch.Tensor,
                with_invariance: bool = True) -> Dict[str, torch.Tensor]:
        """Compute both terms (batch means) and the background indices.

        The logits are entries of the authors' ``B x N`` product
        ``v @ bank.T / t``: the background logits are the values of the
        top-M search (:func:`~mmssl_ext.models.utils.knn.knn_search`, one
        chunked product, no gradient), the anchor's own and the candidates'
        logits are dot products with their bank rows; no ``B x M x D`` copy
        of background rows is made.

        Gradient: every logit is ``v_i . m_j / t``, so the gradient of a
        term with respect to ``v_i`` is ``sum_j (dL/dl_ij) m_j / t``. It is
        taken here, in the forward pass, from the bank as it is now, by
        :func:`feature_grad` (one weighted gather-sum over the bank, as
        the authors' ``grad_logits @ bank``), and attached to the term, so
        the caller may update ``bank`` in place right after this call (InvP
        writes the bank inside ``loss()``, before ``backward()``) and the
        gradient is still that of the bank the loss saw.

        Args:
            feats (Tensor): (B, D) L2-normalised features ``v_i``.
            idx (Tensor): (B,) their data-set indices.
            bank (Tensor): (N, D) memory bank (no gradient; not modified).
            neigh (Tensor): (N, k) neighbour table (not modified).
            with_invariance (bool): compute ``L_inv`` (skip it when its
                weight is 0 for good, e.g. the NPID-style baseline).

        Returns:
            dict: ``loss_ins`` and ``loss_inv`` (unweighted batch means;
            ``loss_inv`` is None without invariance), ``bg_idx`` (B, M)
            background indices sorted by decreasing similarity and
            ``num_pos`` (mean number of positives used per anchor).
        """
        m = self.n_background
        t = self.temperature
        bank = bank.detach()
        need_grad = torch.is_grad_enabled() and feats.requires_grad
        with torch.no_grad():
            q = feats.detach().to(bank.dtype)
            bg_val, bg_idx = knn_search(q, bank, m, backend=self.knn_backend)
            self_val = (q * bank[idx]).sum(1)
            if with_invariance:
                cand, valid = propagate(neigh, idx, self.diffusion_layer,
                                        self.propagation)
                cand_val = torch.einsum('bd,bkd->bk', q, bank[cand])
        # the logits as leaves: the terms' gradients with respect to them
        # are turned into gradients of the features below
        self_logits = (self_val / t).requires_grad_(need_grad)
        bg_logits = (bg_val / t).requires_grad_(need_grad)
        with torch.set_grad_enabled(need_grad):
            add_self = (~(bg_idx == idx.view(-1, 1)).any(1)
                        if self.instance_denominator == 'paper' else None)
            loss_ins = invp_instance_loss(self_logits, bg_logits, self.eps,
                                          add_self).mean()
            if with_invariance:
                cand_logits = (cand_val / t).requires_grad_(need_grad)
                pos_logits, pos_mask, _ = select_positives(
                    cand_logits, self.n_pos, self.hard_positive, valid)
                bg_keep = (background_outside(bg_idx, cand, idx)
                           if self.denominator == 'paper' else None)
                loss_inv = invp_invariance_loss(
                    pos_logits, bg_logits, self_logits, self.denominator,
                    None if valid is None else pos_mask, bg_keep,
                    self.eps).mean()
        index = [idx.view(-1, 1), bg_idx]
        logits = [self_logits, bg_logits]
        if with_invariance:
            index.append(cand)
            logits.append(cand_logits)
        index = torch.cat(index, 1)

        def attach(term: torch.Tensor) -> torch.Tensor:
            if not need_grad:
                return term
            grads = torch.autograd.grad(term, logits, retain_graph=True,
                                        allow_unused=True)
            grads = torch.cat([
                (torch.zeros_like(x) if g is None else g).view(x.size(0), -1)
                for g, x in zip(grads, logits)
            ], 1)
            jac = feature_grad(bank, index, grads, t)
            return _WithFeatureGrad.apply(term.detach(), feats, jac)

        out = dict(loss_ins=attach(loss_ins), loss_inv=None, bg_idx=bg_idx,
                   num_pos=feats.new_zeros(()))
        if with_invariance:
            out.update(loss_inv=attach(loss_inv),
                       num_pos=pos_mask.sum(1).float().mean().detach())
        return out
