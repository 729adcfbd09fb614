"""BSIM: mixture views as spurious positives (configs/bsim/README.md).

"Beyond Single Instance Multi-view Unsupervised Representation Learning"
(Chu, Zhan, Wei; arXiv 2011.13356) / "A Unified Mixture-View Framework for
Unsupervised Representation Learning" (BMVC 2022). No official code exists;
what is implemented is a reconstruction (documented in
configs/bsim/README.md), each of its choices a constructor argument.

Every variant subclasses MMPretrain's algorithm and calls its ``loss()``
unchanged for ``L_SIM`` (logged as ``loss_base``); the embeddings BSIM needs
as targets are read from that same pass (forward hooks on the neck / target
network, MoCo's keys from its enqueue call), so the only extra work is one
forward/backward of the mixed view through the online/query branch:

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
  2, i.e. ``D = 2 - 2 cos`` up to an additive constant (the way
  MMPretrain's BYOL writes its own loss). Targets: the target network's
  projections (BYOL) or the online projections, detached (SimSiam).

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
from contextlib import contextmanager
from typing import Callable, Dict, List, Optional

import torch
import torch.nn.functional as F
from mmengine.dist import all_gather, get_rank
from mmpretrain.models.selfsup import BYOL, MoCo, SimCLR, SimSiam
from mmpretrain.models.utils import batch_shuffle_ddp, batch_unshuffle_ddp
from mmpretrain.structures import DataSample

from mmssl_ext.registry import MODELS
from ..losses.joint_similarity_loss import (joint_contrastive_loss,
                                            joint_distance_loss)
from ..utils.instance_mix import InstanceMixer, MixParams

MIXED_VIEWS = ('a', 'both')

__all__ = [
    'BSIMMixin', 'BSIMSimCLR', 'BSIMMoCo', 'BSIMBYOL', 'BSIMSimSiam',
    'record_outputs'
]


@contextmanager
def record_outputs(module: torch.nn.Module):
    """Collect the outputs of every forward call of ``module`` while the
    context is open (a forward hook, removed on exit)."""
    outs: List = []
    handle = module.register_forward_hook(
        lambda _mod, _args, out: outs.append(out))
    try:
        yield outs
    finally:
        handle.remove()


class BSIMMixin:
    """Mixing, mixture encoding and loss assembly shared by the variants.

    The host class must be a ``BaseSelfSupervisor`` with ``backbone`` and
    ``neck``. Term functions ``term(v, z, src_a, src_b, lam)`` score the
    (un-normalised) projections ``z`` of mixtures of view ``v`` against the
    targets of view ``1 - v`` of sources ``src_a`` (weight ``lam``) and
    ``src_b`` (weight ``1 - lam``).
    """

    def _init_bsim(self, mix_mode: str, p_mixup: float, alpha: float,
                   pairing: str, mixed_view: str, symmetric_mix: bool,
                   beta_weight: float) -> None:
        name = type(self).__name__
        self.mixer = InstanceMixer(
            mix_mode=mix_mode,
            alpha=alpha,
            p_mixup=p_mixup,
            pairing=pairing,
            key_prefix=f'{name}: ')
        if mixed_view not in MIXED_VIEWS:
            raise ValueError(f'{name}: mixed_view must be one of '
                             f'{MIXED_VIEWS}, got {mixed_view!r}')
        if not isinstance(symmetric_mix, bool):
            raise TypeError(f'{name}: symmetric_mix must be a bool, got '
                            f'{symmetric_mix!r}')
        if not isinstance(beta_weight, (int, float)) or not beta_weight >= 0:
            raise ValueError(f'{name}: beta_weight must be a number >= 0, '
                             f'got {beta_weight!r}')
        self.mixed_view = mixed_view
        self.symmetric_mix = symmetric_mix
        self.beta_weight = float(beta_weight)

    @property
    def mixed_view_ids(self) -> tuple:
        return (0, ) if self.mixed_view == 'a' else (0, 1)

    def _embed_online(self, x: torch.Tensor) -> torch.Tensor:
        """Projection of ``x`` through the online/query branch (with
        gradient)."""
        return self.neck(self.backbone(x))[0]

    def _bsim_loss(self, views: List[torch.Tensor],
                   term: Callable) -> tuple:
        """``beta_weight * L_BSIM`` and the batch's :class:`MixParams`."""
        if len(views) < 2:
            raise ValueError(f'{type(self).__name__} needs two views per '
                             f'sample, got {len(views)}')
        x0 = views[0]
        params = self.mixer.sample(x0.size(0), x0.shape[-2:], x0.device)
        idx = torch.arange(x0.size(0), device=x0.device)
        terms = []
        for v in self.mixed_view_ids:
            z = self._embed_online(self.mixer.apply(views[v], params))
            terms.append(term(v, z, idx, params.perm, params.lam))
            if self.symmetric_mix:
                if params.is_involution:
                    z_rev = z.index_select(0, params.perm)
                else:
                    z_rev = self._embed_online(
                        self.mixer.apply(views[v], params, mirror=True))
                terms.append(term(v, z_rev, params.perm, idx, params.lam))
        loss = terms[0] if len(terms) == 1 else sum(terms) / len(terms)
        return self.beta_weight * loss, params

    @staticmethod
    def _pack(base: Dict[str, torch.Tensor], loss_bsim: torch.Tensor,
              params: MixParams) -> Dict[str, torch.Tensor]:
        dev = loss_bsim.device
        out = dict(loss_base=base['loss'], loss_bsim=loss_bsim)
        # diagnostics (no 'loss' in the key: logged, not optimised);
        # torch.full launches a fill, no host -> device copy
        out['bsim_lambda'] = torch.full((), params.lam, device=dev)
        out['bsim_mixup'] = torch.full((), float(params.mode == 'mixup'),
                                       device=dev)
        return out


_MIX_ARGS_DOC = """\
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
"""



def _with_mix_args_doc(cls):
    cls.__doc__ = cls.__doc__.replace('MIX_ARGS\n', _MIX_ARGS_DOC)
    return cls


@MODELS.register_module()
@_with_mix_args_doc
class BSIMSimCLR(BSIMMixin, SimCLR):
    """SimCLR + BSIM (MMPretrain's :class:`SimCLR` for ``loss_base``).

    The mixture's negatives are the stop-gradient in-batch embeddings of both
    views gathered from all ranks, minus the (up to) four embeddings of its
    two sources. Per-rank batches must have one size (as SimCLR's gather
    already requires).

    Args:
        backbone, neck, head: as :class:`SimCLR`.
MIX_ARGS
        **kwargs: ``pretrained``, ``data_preprocessor``, ``init_cfg``.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 mix_mode: str = 'both',
                 p_mixup: float = 0.5,
                 alpha: float = 1.0,
                 pairing: str = 'reverse',
                 mixed_view: str = 'a',
                 symmetric_mix: bool = False,
                 beta_weight: float = 1.0,
                 **kwargs) -> None:
        super().__init__(backbone=backbone, neck=neck, head=head, **kwargs)
        self._init_bsim(mix_mode, p_mixup, alpha, pairing, mixed_view,
                        symmetric_mix, beta_weight)

    def loss(self, inputs: List[torch.Tensor], data_samples: List[DataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        with record_outputs(self.neck) as outs:
            base = super().loss(inputs, data_samples, **kwargs)
        n = inputs[0].size(0)
        z = outs[0][0].detach()  # (2n, D): rows i*2 + view
        if z.size(0) != 2 * n:
            raise RuntimeError('BSIMSimCLR expects SimCLR to encode the two '
                               f'views in one pass of {2 * n} rows, got '
                               f'{tuple(z.shape)}')
        keys = F.normalize(z, dim=1).view(n, 2, -1)
        all_keys = torch.cat(all_gather(keys), dim=0)  # (world * n, 2, D)
        negatives = all_keys.flatten(0, 1)  # global row (r*n + i)*2 + v
        offset = get_rank() * n
        rows = torch.arange(n, device=z.device)

        def term(v, z_mix, src_a, src_b, lam):
            exclude = torch.zeros(
                n, all_keys.size(0), dtype=torch.bool, device=z.device)
            exclude[rows, offset + src_a] = True
            exclude[rows, offset + src_b] = True
            exclude = exclude.repeat_interleave(2, dim=1)
            target = keys[:, 1 - v]
            return joint_contrastive_loss(
                F.normalize(z_mix, dim=1),
                target[src_a],
                target[src_b],
                negatives,
                lam,
                neg_mask=exclude,
                criterion=self.head.loss)

        loss_bsim, params = self._bsim_loss(inputs, term)
        return self._pack(base, loss_bsim, params)


@MODELS.register_module()
@_with_mix_args_doc
class BSIMMoCo(BSIMMixin, MoCo):
    """MoCo (v1/v2) + BSIM (MMPretrain's :class:`MoCo` for ``loss_base``).

    The mixture's targets are the momentum-encoder keys of view b of its
    sources (the very keys of the base loss), its negatives the queue as the
    base loss saw it: the enqueue of this batch's keys is deferred until the
    BSIM term is computed, then done by MoCo's own method (all-gathered, so
    the queue stays identical on every rank). With ``mixed_view='both'`` the
    keys of view a are computed too (one more no-grad momentum forward).

    Args:
        backbone, neck, head, queue_len, feat_dim: as :class:`MoCo`.
        momentum (float): MMEngine convention, the weight of the NEW value
            in the momentum encoder update (MoCo's m=0.999 is 0.001).
MIX_ARGS
        **kwargs: ``pretrained``, ``data_preprocessor``, ``init_cfg``.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 queue_len: int = 65536,
                 feat_dim: int = 128,
                 momentum: float = 0.001,
                 mix_mode: str = 'both',
                 p_mixup: float = 0.5,
                 alpha: float = 1.0,
                 pairing: str = 'reverse',
                 mixed_view: str = 'a',
                 symmetric_mix: bool = False,
                 beta_weight: float = 1.0,
                 **kwargs) -> None:
        super().__init__(
            backbone=backbone,
            neck=neck,
            head=head,
            queue_len=queue_len,
            feat_dim=feat_dim,
            momentum=momentum,
            **kwargs)
        self._init_bsim(mix_mode, p_mixup, alpha, pairing, mixed_view,
                        symmetric_mix, beta_weight)
        self._defer_enqueue = False
        self._deferred_keys: Optional[torch.Tensor] = None

    @torch.no_grad()
    def _dequeue_and_enqueue(self, keys: torch.Tensor) -> None:
        if self._defer_enqueue:
            self._deferred_keys = keys
            return
        super()._dequeue_and_enqueue(keys)

    @torch.no_grad()
    def _momentum_keys(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised keys of ``x`` by the momentum encoder (batch-shuffled
        across ranks for BN, as MoCo does)."""
        x, idx_unshuffle = batch_shuffle_ddp(x)
        k = F.normalize(self.encoder_k(x)[0], dim=1)
        return batch_unshuffle_ddp(k, idx_unshuffle)

    def loss(self, inputs: List[torch.Tensor], data_samples: List[DataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        self._defer_enqueue = True
        try:
            base = super().loss(inputs, data_samples, **kwargs)
            keys = self._deferred_keys
        finally:
            self._defer_enqueue = False
            self._deferred_keys = None
        if keys is None:
            raise RuntimeError('BSIMMoCo: MoCo.loss did not enqueue keys')
        targets = {1: keys}
        if 1 in self.mixed_view_ids:
            targets[0] = self._momentum_keys(inputs[0])
        # the queue before this batch; cloned because it is updated in place
        # before backward (as MoCo does)
        negatives = self.queue.clone().detach().t()

        def term(v, z_mix, src_a, src_b, lam):
            target = targets[1 - v]
            return joint_contrastive_loss(
                F.normalize(z_mix, dim=1),
                target[src_a],
                target[src_b],
                negatives,
                lam,
                criterion=self.head.loss)

        loss_bsim, params = self._bsim_loss(inputs, term)
        super()._dequeue_and_enqueue(keys)
        return self._pack(base, loss_bsim, params)


class _BSIMLatentMixin(BSIMMixin):
    """Shared term of the predictor-based variants (BYOL, SimSiam)."""

    def _distance(self, pred: torch.Tensor,
                  target: torch.Tensor) -> torch.Tensor:
        # MMPretrain's CosineSimilarityLoss is -cos; 2 * (-cos) is the
        # distance D = 2 - 2 cos up to a constant (same gradient)
        return 2.0 * self.head.loss_module(pred, target)

    def _latent_term(self, targets: Dict[int, torch.Tensor]) -> Callable:

        def term(v, z_mix, src_a, src_b, lam):
            pred = self.head.predictor([z_mix])[0]
            target = targets[1 - v]
            return joint_distance_loss(
                pred,
                target[src_a],
                target[src_b],
                lam,
                distance=self._distance)

        return term


@MODELS.register_module()
@_with_mix_args_doc
class BSIMBYOL(_BSIMLatentMixin, BYOL):
    """BYOL + BSIM (MMPretrain's :class:`BYOL` for ``loss_base``).

    Targets: the target network's projections of the other view (recorded
    from the base pass; the target network is updated once per iteration, by
    the base loss).

    Args:
        backbone, neck, head: as :class:`BYOL`.
        base_momentum (float): MMEngine convention (weight of the NEW value),
            cosine-annealed to 0 by :class:`CosineEMA`.
MIX_ARGS
        **kwargs: ``pretrained``, ``data_preprocessor``, ``init_cfg``.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 base_momentum: float = 0.004,
                 mix_mode: str = 'both',
                 p_mixup: float = 0.5,
                 alpha: float = 1.0,
                 pairing: str = 'reverse',
                 mixed_view: str = 'a',
                 symmetric_mix: bool = False,
                 beta_weight: float = 1.0,
                 **kwargs) -> None:
        super().__init__(
            backbone=backbone,
            neck=neck,
            head=head,
            base_momentum=base_momentum,
            **kwargs)
        self._init_bsim(mix_mode, p_mixup, alpha, pairing, mixed_view,
                        symmetric_mix, beta_weight)

    def loss(self, inputs: List[torch.Tensor], data_samples: List[DataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        with record_outputs(self.target_net) as outs:
            base = super().loss(inputs, data_samples, **kwargs)
        if len(outs) != 2:
            raise RuntimeError('BSIMBYOL expects BYOL to run the target '
                               f'network twice, it ran {len(outs)} times')
        targets = {0: outs[0][0].detach(), 1: outs[1][0].detach()}
        loss_bsim, params = self._bsim_loss(inputs,
                                            self._latent_term(targets))
        return self._pack(base, loss_bsim, params)


@MODELS.register_module()
@_with_mix_args_doc
class BSIMSimSiam(_BSIMLatentMixin, SimSiam):
    """SimSiam + BSIM (MMPretrain's :class:`SimSiam` for ``loss_base``).

    Targets: the online projections of the other view, stop-gradient
    (recorded from the base pass).

    Args:
        backbone, neck, head: as :class:`SimSiam`.
MIX_ARGS
        **kwargs: ``pretrained``, ``data_preprocessor``, ``init_cfg``.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 mix_mode: str = 'both',
                 p_mixup: float = 0.5,
                 alpha: float = 1.0,
                 pairing: str = 'reverse',
                 mixed_view: str = 'a',
                 symmetric_mix: bool = False,
                 beta_weight: float = 1.0,
                 **kwargs) -> None:
        super().__init__(backbone=backbone, neck=neck, head=head, **kwargs)
        self._init_bsim(mix_mode, p_mixup, alpha, pairing, mixed_view,
                        symmetric_mix, beta_weight)

    def loss(self, inputs: List[torch.Tensor], data_samples: List[DataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        with record_outputs(self.neck) as outs:
            base = super().loss(inputs, data_samples, **kwargs)
        if len(outs) != 2:
            raise RuntimeError('BSIMSimSiam expects SimSiam to run the neck '
                               f'twice, it ran {len(outs)} times')
        targets = {0: outs[0][0].detach(), 1: outs[1][0].detach()}
        loss_bsim, params = self._bsim_loss(inputs,
                                            self._latent_term(targets))
        return self._pack(base, loss_bsim, params)
