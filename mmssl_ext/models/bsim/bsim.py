"""BSIM: mixture views as spurious positives (configs/bsim/README.md).

"Beyond Single Instance Multi-view Unsupervised Representation Learning"
(Chu, Zhan, Wei; arXiv 2011.13356) / "A Unified Mixture-View Framework for
Unsupervised Representation Learning" (BMVC 2022). No official code exists;
this is a reconstruction (documented in configs/bsim/README.md), each of its
choices a setting of :class:`MixtureTerm`.

Every variant is MMPretrain's algorithm plus a mixture term. The framework's
step comes from the declared two-view interface
(:func:`~mmssl_ext.models.algorithms.siamese_step`): its loss is
``L_SIM`` (logged as ``loss_base``) and its targets, negatives and deferred
state update are what the mixture term reads, so the only extra work is one
forward/backward of the mixed view through the online/query branch::

    L = L_SIM + beta_weight * L_BSIM     (``loss_base`` + ``loss_bsim``)

``L_BSIM`` for the mixture ``m_i`` of view a of sources ``i`` (weight
``lam``) and ``j(i)`` (weight ``1 - lam``), against the *other* view of each
source:

* SimCLR / MoCo: ``lam * l(z_m, k_i) + (1 - lam) * l(z_m, k_j)`` with the
  framework's ``ContrastiveHead`` (temperature, cross-entropy). Negatives:
  MoCo's queue (before this batch is enqueued); SimCLR's in-batch
  embeddings of all ranks minus the four embeddings of the two sources.
  The targets and negatives are stop-gradient.
* BYOL / SimSiam: ``lam * D(h(z_m), sg(t_i)) + (1 - lam) * D(h(z_m),
  sg(t_j))`` with the framework's predictor ``h`` and distance
  (``LatentPredictHead.loss_module``, a ``CosineSimilarityLoss``) scaled by
  2, i.e. ``D = 2 - 2 cos`` up to an additive constant (the way MMPretrain's
  BYOL writes its own loss). Targets: the target network's projections
  (BYOL) or the online projections, detached (SimSiam).

With ``mixed_view='both'`` view b is mixed too (same lambda, box and
partners) and scored against view a's targets; with ``symmetric_mix=True`` the
reversed-order mixture ``mix(base=x_j, partner=x_i)`` is scored with weights
``(1 - lam, lam)``. ``L_BSIM`` is the mean over these mixture terms, so
``beta_weight`` keeps its meaning. Under reverse pairing the reversed-order
mixture is the mixture batch re-ordered (``j`` is an involution; BN batch
statistics do not depend on the order), so its features are taken by
re-indexing, as Un-Mix does, and its term equals the main term: the knob
changes the loss only with ``pairing='random'``, where it costs one more
forward.
"""
from typing import Callable, Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.dist import all_gather, get_rank
from mmpretrain.models.selfsup import BYOL, MoCo, SimCLR, SimSiam
from mmpretrain.structures import DataSample

from mmssl_ext.registry import MODELS
from ..algorithms.siamese import SiameseStep, siamese_step
from .instance_mix import InstanceMixer, MixParams
from .joint_loss import joint_contrastive_loss, joint_distance_loss

MIXED_VIEWS = ('a', 'both')
#: a term ``term(v, z, src_a, src_b, lam)`` scores the projections ``z`` of
#: mixtures of view ``v`` against the targets of view ``1 - v`` of sources
#: ``src_a`` (weight ``lam``) and ``src_b`` (weight ``1 - lam``)
Term = Callable[[int, torch.Tensor, torch.Tensor, torch.Tensor, float],
                torch.Tensor]

__all__ = [
    'MixtureTerm', 'BSIMMixin', 'BSIMSimCLR', 'BSIMMoCo', 'BSIMBYOL',
    'BSIMSimSiam'
]


@MODELS.register_module()
class MixtureTerm(nn.Module):
    """BSIM's term: draw the batch's mixtures, encode them, score them.

    Args:
        mix_mode (str): ``'mixup'``, ``'cutmix'`` (lambda recomputed from the
            pasted box) or ``'both'`` (per-batch choice). Defaults to
            ``'both'``.
        p_mixup (float): probability of mixup under ``'both'``. Defaults to
            0.5.
        alpha (float): ``lambda ~ Beta(alpha, alpha)``, > 0. Defaults to 1.0.
        pairing (str): partner ``j(i)``: ``'reverse'`` (reversed batch
            order) or ``'random'`` (random permutation). Defaults to
            ``'reverse'``.
        mixed_view (str): ``'a'`` (mix the first view only) or ``'both'``.
            Defaults to ``'a'``.
        symmetric_mix (bool): add the reversed-order mixture term. Defaults
            to False.
        beta_weight (float): weight of ``L_BSIM``. Defaults to 1.0.
        key_prefix (str): prefix of the config keys in error messages.
    """

    def __init__(self,
                 mix_mode: str = 'both',
                 p_mixup: float = 0.5,
                 alpha: float = 1.0,
                 pairing: str = 'reverse',
                 mixed_view: str = 'a',
                 symmetric_mix: bool = False,
                 beta_weight: float = 1.0,
                 key_prefix: str = 'mixture.') -> None:
        super().__init__()
        self.mixer = InstanceMixer(
            mix_mode=mix_mode,
            alpha=alpha,
            p_mixup=p_mixup,
            pairing=pairing,
            key_prefix=key_prefix)
        if mixed_view not in MIXED_VIEWS:
            raise ValueError(f'{key_prefix}mixed_view must be one of '
                             f'{MIXED_VIEWS}, got {mixed_view!r}')
        if not isinstance(symmetric_mix, bool):
            raise TypeError(f'{key_prefix}symmetric_mix must be a bool, got '
                            f'{symmetric_mix!r}')
        if not isinstance(beta_weight, (int, float)) or not beta_weight >= 0:
            raise ValueError(f'{key_prefix}beta_weight must be a number >= '
                             f'0, got {beta_weight!r}')
        self.mixed_view = mixed_view
        self.symmetric_mix = symmetric_mix
        self.beta_weight = float(beta_weight)

    def extra_repr(self) -> str:
        return (f'{self.mixer!r}, mixed_view={self.mixed_view!r}, '
                f'symmetric_mix={self.symmetric_mix}, '
                f'beta_weight={self.beta_weight}')

    @property
    def view_ids(self) -> Tuple[int, ...]:
        """The views that are mixed."""
        return (0, ) if self.mixed_view == 'a' else (0, 1)

    def forward(self, views: List[torch.Tensor],
                encode: Callable[[torch.Tensor], torch.Tensor],
                term: Term) -> Tuple[torch.Tensor, MixParams]:
        """``beta_weight * L_BSIM`` of the batch ``views`` and its
        :class:`MixParams`; ``encode`` maps images to projections (with
        gradient)."""
        x0 = views[0]
        params = self.mixer.sample(x0.size(0), x0.shape[-2:], x0.device)
        idx = torch.arange(x0.size(0), device=x0.device)
        terms = []
        for v in self.view_ids:
            z = encode(self.mixer.apply(views[v], params))
            terms.append(term(v, z, idx, params.perm, params.lam))
            if self.symmetric_mix:
                if params.is_involution:
                    z_rev = z.index_select(0, params.perm)
                else:
                    z_rev = encode(
                        self.mixer.apply(views[v], params, mirror=True))
                terms.append(term(v, z_rev, params.perm, idx, params.lam))
        loss = terms[0] if len(terms) == 1 else sum(terms) / len(terms)
        return self.beta_weight * loss, params

    @staticmethod
    def pack(loss_base: torch.Tensor, loss_bsim: torch.Tensor,
             params: MixParams) -> Dict[str, torch.Tensor]:
        """The loss dict: both terms and the diagnostics (no 'loss' in their
        keys: logged, not optimised; ``torch.full`` launches a fill, no
        host -> device copy)."""
        dev = loss_bsim.device
        return dict(
            loss_base=loss_base,
            loss_bsim=loss_bsim,
            bsim_lambda=torch.full((), params.lam, device=dev),
            bsim_mixup=torch.full((), float(params.mode == 'mixup'),
                                  device=dev))


_FLAT_KEYS = ('mix_mode', 'p_mixup', 'alpha', 'pairing', 'mixed_view',
              'symmetric_mix', 'beta_weight')


class BSIMMixin:
    """The framework's step plus :class:`MixtureTerm`, for a host that is
    one of the two-view frameworks; a variant defines :meth:`term`.

    Args:
        *args, **kwargs: the framework's arguments.
        mixture (dict, optional): :class:`MixtureTerm` settings (defaults
            without).
    """

    def __init__(self, *args, mixture: Optional[dict] = None, **kwargs):
        flat = [k for k in _FLAT_KEYS if k in kwargs]
        if flat:
            raise ValueError(
                f'{type(self).__name__}: {flat} are settings of the mixture '
                'term: write them as model.mixture=dict(...)')
        super().__init__(*args, **kwargs)
        cfg = dict(type='MixtureTerm', _scope_='mmssl_ext',
                   key_prefix=f'{type(self).__name__}: mixture.')
        cfg.update(mixture or {})
        self.mixture = MODELS.build(cfg)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Projection of ``x`` through the online/query branch (with
        gradient)."""
        return self.neck(self.backbone(x))[0]

    def term(self, step: SiameseStep, views: List[torch.Tensor]) -> Term:
        """The framework's way to score a mixture (see :data:`Term`)."""
        raise NotImplementedError

    def loss(self, inputs: List[torch.Tensor], data_samples: List[DataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        step = siamese_step(self, inputs)
        loss_bsim, params = self.mixture(inputs, self.encode,
                                         self.term(step, inputs))
        step.commit()
        return self.mixture.pack(step.loss, loss_bsim, params)


def _targets(step: SiameseStep,
             mixture: MixtureTerm) -> Dict[int, torch.Tensor]:
    # the targets of the other views, computed before the mixing draws
    return {1 - v: step.target(1 - v) for v in mixture.view_ids}


@MODELS.register_module()
class BSIMSimCLR(BSIMMixin, SimCLR):
    """SimCLR + BSIM (MMPretrain's :class:`SimCLR` for ``loss_base``).

    The mixture's negatives are the stop-gradient in-batch embeddings of both
    views gathered from all ranks, minus the (up to) four embeddings of its
    two sources. Per-rank batches must have one size (as SimCLR's gather
    already requires).

    Args:
        backbone, neck, head: as :class:`SimCLR`.
        mixture (dict): :class:`MixtureTerm` settings.
    """

    def term(self, step: SiameseStep, views: List[torch.Tensor]) -> Term:
        keys = torch.stack([step.targets[0], step.targets[1]], 1)  # (n,2,D)
        n = keys.size(0)
        all_keys = torch.cat(all_gather(keys), dim=0)  # (world * n, 2, D)
        negatives = all_keys.flatten(0, 1)  # global row (r*n + i)*2 + v
        offset = get_rank() * n
        rows = torch.arange(n, device=keys.device)

        def term(v, z_mix, src_a, src_b, lam):
            exclude = torch.zeros(
                n, all_keys.size(0), dtype=torch.bool, device=keys.device)
            exclude[rows, offset + src_a] = True
            exclude[rows, offset + src_b] = True
            target = keys[:, 1 - v]
            return joint_contrastive_loss(
                F.normalize(z_mix, dim=1), target[src_a], target[src_b],
                negatives, lam, neg_mask=exclude.repeat_interleave(2, dim=1),
                criterion=self.head.loss)

        return term


@MODELS.register_module()
class BSIMMoCo(BSIMMixin, MoCo):
    """MoCo (v1/v2) + BSIM (MMPretrain's :class:`MoCo` for ``loss_base``).

    The mixture's targets are the momentum-encoder keys of the other view of
    its sources (the very keys of the base loss; with ``mixed_view='both'``
    also the keys of view a, one more no-grad momentum forward), its
    negatives the queue as the base loss saw it: the step's enqueue (MoCo's
    own) runs after the mixture term, all-gathered, so the queue stays
    identical on every rank.

    Args:
        backbone, neck, head, queue_len, feat_dim: as :class:`MoCo`.
        momentum (float): MMEngine convention, the weight of the NEW value
            in the momentum encoder update (MoCo's m=0.999 is 0.001).
        mixture (dict): :class:`MixtureTerm` settings.
    """

    def term(self, step: SiameseStep, views: List[torch.Tensor]) -> Term:
        targets = _targets(step, self.mixture)

        def term(v, z_mix, src_a, src_b, lam):
            target = targets[1 - v]
            return joint_contrastive_loss(
                F.normalize(z_mix, dim=1), target[src_a], target[src_b],
                step.negatives, lam, criterion=self.head.loss)

        return term


class _BSIMLatentMixin(BSIMMixin):
    """The term of the predictor-based variants (BYOL, SimSiam)."""

    def _distance(self, pred: torch.Tensor,
                  target: torch.Tensor) -> torch.Tensor:
        # MMPretrain's CosineSimilarityLoss is -cos; 2 * (-cos) is
        # D = 2 - 2 cos up to a constant (same gradient)
        return 2.0 * self.head.loss_module(pred, target)

    def term(self, step: SiameseStep, views: List[torch.Tensor]) -> Term:
        targets = _targets(step, self.mixture)

        def term(v, z_mix, src_a, src_b, lam):
            target = targets[1 - v]
            return joint_distance_loss(
                self.head.predictor([z_mix])[0], target[src_a],
                target[src_b], lam, distance=self._distance)

        return term


@MODELS.register_module()
class BSIMBYOL(_BSIMLatentMixin, BYOL):
    """BYOL + BSIM (MMPretrain's :class:`BYOL` for ``loss_base``).

    Targets: the target network's projections of the other view (from the
    base step; the target network is updated once per iteration, by it).

    Args:
        backbone, neck, head: as :class:`BYOL`.
        base_momentum (float): MMEngine convention (weight of the NEW value),
            cosine-annealed to 0 by :class:`CosineEMA`.
        mixture (dict): :class:`MixtureTerm` settings.
    """


@MODELS.register_module()
class BSIMSimSiam(_BSIMLatentMixin, SimSiam):
    """SimSiam + BSIM (MMPretrain's :class:`SimSiam` for ``loss_base``).

    Targets: the online projections of the other view, stop-gradient.

    Args:
        backbone, neck, head: as :class:`SimSiam`.
        mixture (dict): :class:`MixtureTerm` settings.
    """
