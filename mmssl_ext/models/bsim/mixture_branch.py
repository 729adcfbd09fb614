"""BSIM's mixture term as a branch of any two-view framework
(configs/bsim/README.md).

:class:`MixtureBranch` draws a batch's mixtures, encodes them and scores
them the framework's way, from the framework's step:

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
"""
from typing import Callable, Dict, Tuple

import torch
import torch.nn.functional as F
from mmengine.dist import all_gather, get_rank

from mmssl_ext.registry import MODELS
from ..algorithms.composed import BaseBranch
from ..algorithms.siamese import SiameseStep, framework_of
from .instance_mix import InstanceMixer
from .joint_loss import joint_contrastive_loss, joint_distance_loss

MIXED_VIEWS = ('a', 'both')
#: a term ``term(v, z, src_a, src_b, lam)`` scores the projections ``z`` of
#: mixtures of view ``v`` against the targets of view ``1 - v`` of sources
#: ``src_a`` (weight ``lam``) and ``src_b`` (weight ``1 - lam``)
Term = Callable[[int, torch.Tensor, torch.Tensor, torch.Tensor, float],
                torch.Tensor]


def _targets(step: SiameseStep,
             mixture) -> Dict[int, torch.Tensor]:
    # the targets of the other views, computed before the mixing draws
    return {1 - v: step.target(1 - v) for v in mixture.view_ids}


def _simclr_term(model, step: SiameseStep, mixture) -> Term:
    """The mixture's negatives are the stop-gradient in-batch embeddings of
    both views gathered from all ranks, minus the (up to) four embeddings of
    its two sources. Per-rank batches must have one size (as SimCLR's
    gather already requires)."""
    keys = torch.stack([step.targets[0], step.targets[1]], 1)  # (n, 2, D)
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
            criterion=model.head.loss)

    return term


def _moco_term(model, step: SiameseStep, mixture) -> Term:
    """Targets: the momentum-encoder keys of the other view of the sources
    (the very keys of the base loss; with ``mixed_view='both'`` also the
    keys of view a, one more no-grad momentum forward); negatives: the queue
    as the base loss saw it (the framework's enqueue runs after the term)."""
    targets = _targets(step, mixture)

    def term(v, z_mix, src_a, src_b, lam):
        target = targets[1 - v]
        return joint_contrastive_loss(
            F.normalize(z_mix, dim=1), target[src_a], target[src_b],
            step.negatives, lam, criterion=model.head.loss)

    return term


def _latent_term(model, step: SiameseStep, mixture) -> Term:
    """Targets: BYOL's target-network projections of the other view (the
    target network is updated once per iteration, by the framework's step),
    SimSiam's online projections of the other view, stop-gradient."""
    targets = _targets(step, mixture)

    def distance(pred, target):
        # MMPretrain's CosineSimilarityLoss is -cos; 2 * (-cos) is
        # D = 2 - 2 cos up to a constant (same gradient)
        return 2.0 * model.head.loss_module(pred, target)

    def term(v, z_mix, src_a, src_b, lam):
        target = targets[1 - v]
        return joint_distance_loss(
            model.head.predictor([z_mix])[0], target[src_a], target[src_b],
            lam, distance=distance)

    return term


#: framework -> how it scores a mixture
TERMS = dict(moco=_moco_term, simclr=_simclr_term, byol=_latent_term,
             simsiam=_latent_term)


@MODELS.register_module()
class MixtureBranch(BaseBranch):
    """BSIM's mixture term on the step of MoCo, SimCLR, BYOL or SimSiam::

        loss_bsim = loss_weight * L_BSIM        (beta in the paper)

    ``L_BSIM`` for the mixture ``m_i`` of view a of sources ``i`` (weight
    ``lam``) and ``j(i)`` (weight ``1 - lam``), against the framework's
    targets of the *other* view of each source, scored the framework's way
    (module docstring); one more forward/backward of the mixed view through
    the online/query branch. With ``mixed_view='both'`` view b is mixed too
    (same lambda, box and partners) and scored against view a's targets;
    with ``symmetric_mix=True`` the reversed-order mixture ``mix(base=x_j,
    partner=x_i)`` is scored with weights ``(1 - lam, lam)``. ``L_BSIM`` is
    the mean over these mixture terms, so ``loss_weight`` keeps its meaning.
    Under reverse pairing the reversed-order mixture is the mixture batch
    re-ordered (``j`` is an involution; BN batch statistics do not depend on
    the order), so its features are taken by re-indexing, as Un-Mix does,
    and its term equals the main term: the knob changes the loss only with
    ``pairing='random'``, where it costs one more forward.

    Logged: ``loss_bsim``, ``bsim_lambda``, ``bsim_mixup`` (1 when the
    batch was mixed by mixup).

    Args:
        loss_weight (float): beta. Defaults to 1.0.
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
        key_prefix (str): prefix of the config keys in error messages.
    """
    loss_keys = ('loss_bsim', 'bsim_lambda', 'bsim_mixup')

    def __init__(self,
                 loss_weight: float = 1.0,
                 mix_mode: str = 'both',
                 p_mixup: float = 0.5,
                 alpha: float = 1.0,
                 pairing: str = 'reverse',
                 mixed_view: str = 'a',
                 symmetric_mix: bool = False,
                 key_prefix: str = 'MixtureBranch: ',
                 init_cfg=None) -> None:
        super().__init__(loss_weight, key=f'{key_prefix}loss_weight',
                         init_cfg=init_cfg)
        self.mixer = InstanceMixer(mix_mode, alpha, p_mixup, pairing,
                                   key_prefix=key_prefix)
        if mixed_view not in MIXED_VIEWS:
            raise ValueError(f'{key_prefix}mixed_view must be one of '
                             f'{MIXED_VIEWS}, got {mixed_view!r}')
        if not isinstance(symmetric_mix, bool):
            raise TypeError(f'{key_prefix}symmetric_mix must be a bool, got '
                            f'{symmetric_mix!r}')
        self.mixed_view = mixed_view
        self.symmetric_mix = symmetric_mix

    def extra_repr(self) -> str:
        return (f'{self.mixer!r}, mixed_view={self.mixed_view!r}, '
                f'symmetric_mix={self.symmetric_mix}, '
                f'loss_weight={self.loss_weight}')

    @property
    def view_ids(self) -> Tuple[int, ...]:
        """The views that are mixed."""
        return (0, ) if self.mixed_view == 'a' else (0, 1)

    def attach(self, model, key: str) -> None:
        super().attach(model, key)
        framework = framework_of(model)
        if framework not in TERMS:
            raise ValueError(
                f'{key}: the mixture term scores mixtures the way MoCo, '
                'SimCLR, BYOL or SimSiam score their views; '
                f'{type(model).__name__} ({framework}) is none of them')

    def loss(self, model, step: SiameseStep,
             data_samples) -> Dict[str, torch.Tensor]:
        term = TERMS[step.framework](model, step, self)
        views = step.inputs
        x0 = views[0]
        params = self.mixer.sample(x0.size(0), x0.shape[-2:], x0.device)
        idx = torch.arange(x0.size(0), device=x0.device)

        def encode(x):  # projections of the mixtures, with gradient
            return model.neck(model.backbone(x))[0]

        terms = []
        for v in self.view_ids:
            z = encode(self.mixer.apply(views[v], params))
            terms.append(term(v, z, idx, params.perm, params.lam))
            if self.symmetric_mix:
                if params.pairing == 'reverse':  # j(j(i)) = i
                    z_rev = z.index_select(0, params.perm)
                else:
                    z_rev = encode(
                        self.mixer.apply(views[v], params, mirror=True))
                terms.append(term(v, z_rev, params.perm, idx, params.lam))
        loss = terms[0] if len(terms) == 1 else sum(terms) / len(terms)
        # no 'loss' in the diagnostics' keys: logged, not optimised;
        # torch.full launches a fill, no host -> device copy
        dev = loss.device
        return dict(
            loss_bsim=self.loss_weight * loss,
            bsim_lambda=torch.full((), params.lam, device=dev),
            bsim_mixup=torch.full((), float(params.mode == 'mixup'),
                                  device=dev))
