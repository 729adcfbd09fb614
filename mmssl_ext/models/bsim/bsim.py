"""BSIM: mixture views as spurious positives (configs/bsim/README.md).

"Beyond Single Instance Multi-view Unsupervised Representation Learning"
(Chu, Zhan, Wei; arXiv 2011.13356) / "A Unified Mixture-View Framework for
Unsupervised Representation Learning" (BMVC 2022). No official code exists;
this is a reconstruction (documented in configs/bsim/README.md), each of its
choices a setting of :class:`~mmssl_ext.models.bsim.MixtureBranch`.

Every variant is a fixed composition: a framework (MMPretrain's SimCLR,
BYOL, SimSiam; this package's ring-buffer MoCo, :class:`RingMoCo`, as for
InterCLR and CLD) plus the mixture branch. The framework's loss is ``L_SIM`` (logged as
``loss_base``); the branch reads the framework's step (its targets,
negatives and deferred state update) through the declared two-view
interface, so the only extra work is one forward/backward of the mixed view
through the online/query branch::

    L = L_SIM + beta_weight * L_BSIM     (``loss_base`` + ``loss_bsim``)

The same branch goes on RingMoCo, or next to other branches, through
``ComposedSSL``.
"""
from typing import Optional

from mmpretrain.models.selfsup import BYOL, SimCLR, SimSiam

from mmssl_ext.registry import MODELS
from ..algorithms.composed import Composition, check_weight
from ..algorithms.ring_moco import RingMoCo


_FLAT_KEYS = ('mix_mode', 'p_mixup', 'alpha', 'pairing', 'mixed_view',
              'symmetric_mix', 'beta_weight')


class BSIMMixin(Composition):
    """The framework (next in the MRO) plus one ``MixtureBranch``.

    Args:
        *args, **kwargs: the framework's arguments.
        mixture (dict, optional): the mixture term's settings
            (``mix_mode``, ``p_mixup``, ``alpha``, ``pairing``,
            ``mixed_view``, ``symmetric_mix``, ``beta_weight``; defaults
            without).
    """

    def __init__(self, *args, mixture: Optional[dict] = None, **kwargs):
        name = type(self).__name__
        flat = [k for k in _FLAT_KEYS if k in kwargs]
        if flat:
            raise ValueError(
                f'{name}: {flat} are settings of the mixture term: write '
                'them as model.mixture=dict(...)')
        cfg = dict(mixture or {})
        # beta_weight enters here (the branch calls it loss_weight)
        beta = check_weight(cfg.pop('beta_weight', 1.0),
                            f'{name}: mixture.beta_weight')
        branch = dict(type='MixtureBranch', loss_weight=beta,
                      key_prefix=f'{name}: mixture.', **cfg)
        super().__init__(*args, branches=[branch], base_loss_key='loss_base',
                         **kwargs)


@MODELS.register_module()
class BSIMSimCLR(BSIMMixin, SimCLR):
    """SimCLR + BSIM (MMPretrain's :class:`SimCLR` for ``loss_base``).

    The mixture's negatives are the stop-gradient in-batch embeddings of both
    views gathered from all ranks, minus the (up to) four embeddings of its
    two sources. Per-rank batches must have one size (as SimCLR's gather
    already requires).

    Args:
        backbone, neck, head: as :class:`SimCLR`.
        mixture (dict): the mixture term's settings.
    """


@MODELS.register_module()
class BSIMMoCo(BSIMMixin, RingMoCo):
    """MoCo (v1/v2) + BSIM (:class:`RingMoCo` for ``loss_base``: MoCo with a
    ring-buffer queue, any batch size).

    The mixture's targets are the momentum-encoder keys of the other view of
    its sources (the very keys of the base loss; with ``mixed_view='both'``
    also the keys of view a, one more no-grad momentum forward), its
    negatives the queue as the base loss saw it: the step's enqueue (MoCo's
    own) runs after the mixture term, all-gathered, so the queue stays
    identical on every rank.

    Args:
        backbone, neck, head, queue_len, feat_dim, shuffle_bn: as
            :class:`RingMoCo`.
        momentum (float): MMEngine convention, the weight of the NEW value
            in the momentum encoder update (MoCo's m=0.999 is 0.001).
        mixture (dict): the mixture term's settings.
    """


@MODELS.register_module()
class BSIMBYOL(BSIMMixin, BYOL):
    """BYOL + BSIM (MMPretrain's :class:`BYOL` for ``loss_base``).

    Targets: the target network's projections of the other view (from the
    base step; the target network is updated once per iteration, by it).

    Args:
        backbone, neck, head: as :class:`BYOL`.
        base_momentum (float): MMEngine convention (weight of the NEW value),
            cosine-annealed to 0 by :class:`CosineEMA`.
        mixture (dict): the mixture term's settings.
    """


@MODELS.register_module()
class BSIMSimSiam(BSIMMixin, SimSiam):
    """SimSiam + BSIM (MMPretrain's :class:`SimSiam` for ``loss_base``).

    Targets: the online projections of the other view, stop-gradient.

    Args:
        backbone, neck, head: as :class:`SimSiam`.
        mixture (dict): the mixture term's settings.
    """
