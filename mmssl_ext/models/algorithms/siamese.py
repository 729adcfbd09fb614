"""One declared interface to the two-view ("Siamese") frameworks.

A method that adds a term to a framework's objective -- BSIM's mixture
term, InterCLR's inter-image branch, CLD's group branch, on any base (see
:mod:`mmssl_ext.models.algorithms.composed`) -- needs more than the
framework's loss: the online projections and backbone features, the
targets the other view is pulled to, the shared negatives, and the moment
the framework updates its state (MoCo's enqueue, NPID's bank writes) so
that the added term reads the state the framework's loss saw: a
:class:`SiameseStep`.

This package's frameworks (:class:`~mmssl_ext.models.algorithms.RingMoCo`,
:class:`~mmssl_ext.models.algorithms.NPID`) compute their step themselves
(``model.step(inputs, data_samples)``; their ``loss()`` is the step and its
commit). MMPretrain's ``MoCo``, ``SimCLR``, ``BYOL`` and ``SimSiam`` return
the loss only, so the adapters below -- the one place that reads their
internals (``_dequeue_and_enqueue``, ``encoder_k``, ``target_net``,
``queue``) -- re-express each ``loss()`` from its parts,
operation for operation. MoCo's step, :func:`moco_step`, is one for
MMPretrain's ``MoCo`` (its adapter passes the queue and its enqueue) and
RingMoCo (its ring buffer). ``tests/test_models/test_algorithms/
test_siamese.py`` checks every step against the framework's own ``loss()``
bit for bit, and each upstream member the adapters rely on (the canaries).
"""
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.models.selfsup import BYOL, MoCo, SimCLR, SimSiam
from mmpretrain.models.selfsup.simclr import GatherLayer
from mmpretrain.models.utils import batch_shuffle_ddp, batch_unshuffle_ddp


@dataclass
class SiameseStep:
    """What one step of a two-view framework computed.

    Attributes:
        loss (Tensor): the framework's objective, as its ``loss()`` returns
            it.
        online (list[Tensor]): ``online[i]``: the online projection
            ``neck(backbone(x_v))[0]`` of view ``v = views[i]`` (with
            gradient, not normalised); MoCo: the query view(s) only.
        targets (dict[int, Tensor]): ``targets[v]``: what the framework
            pulls the *other* view towards, without gradient: MoCo's
            normalised momentum keys, SimCLR's (and NPID's) normalised
            projections, BYOL's target-network projections, SimSiam's
            detached online projections. :meth:`target` computes a missing
            one.
        negatives (Tensor, optional): (K, D) normalised negatives shared by
            every query, as the framework's loss saw them (MoCo's queue);
            None for the frameworks without a memory of negatives.
        commit (callable): the state update the framework makes after its
            loss (MoCo: enqueue the keys; NPID: write the bank); call it
            once, after every added term has read the state.
        framework (str): ``'moco'`` (MMPretrain's MoCo, RingMoCo),
            ``'simclr'``, ``'byol'``, ``'simsiam'`` or ``'npid'``.
        views (list[int]): the view index of every ``online`` entry.
        pair (tuple[int, int]): ``(query view, target view)`` of the
            framework's own term: MoCo the first query and the key, the
            others ``(0, 1)``.
        inputs (list[Tensor]): the views.
        features (dict[int, Any]): ``features[v]``: the online backbone's
            output on view ``v`` (with gradient); :meth:`feature` computes a
            missing one.
        neck_outs (dict[int, tuple]): ``neck_outs[v]``: the whole output of
            the online neck on view ``v`` (a neck may return more than the
            projection, e.g. CLD's group projection); :meth:`neck_out`.
        target_features (dict[int, tuple]): frameworks with a momentum key
            encoder (MoCo): ``target_features[v] = (feats, restore)``, the
            momentum backbone's output on view ``v`` in the order it was
            computed (shuffled across ranks) and the function that puts rows
            of anything computed from it back in batch order.
        queries (dict[int, Tensor]): ``queries[v]``: the L2-normalised online
            projection of view ``v``; MoCo: the very tensor its loss used, so
            that a term added on it joins the framework's graph (its
            gradient accumulates there as in one loss); :meth:`query`.
    """
    loss: torch.Tensor
    online: List[torch.Tensor]
    targets: Dict[int, torch.Tensor]
    negatives: Optional[torch.Tensor] = None
    commit: Callable[[], None] = lambda: None
    target_fn: Optional[Callable[[int], torch.Tensor]] = field(
        default=None, repr=False)
    framework: str = ''
    views: List[int] = field(default_factory=list)
    pair: Tuple[int, int] = (0, 1)
    inputs: List[torch.Tensor] = field(default_factory=list, repr=False)
    features: Dict[int, Any] = field(default_factory=dict, repr=False)
    neck_outs: Dict[int, tuple] = field(default_factory=dict, repr=False)
    target_features: Dict[int, Tuple[Any, Callable]] = field(
        default_factory=dict, repr=False)
    queries: Dict[int, torch.Tensor] = field(default_factory=dict,
                                             repr=False)
    model: Optional[nn.Module] = field(default=None, repr=False)

    def __post_init__(self):
        if not self.views:
            self.views = list(range(len(self.online)))

    def target(self, view: int) -> torch.Tensor:
        """``targets[view]``, computed (and kept) if the framework's loss
        did not need it (MoCo: the momentum keys of a query view)."""
        if view not in self.targets:
            if self.target_fn is None:
                raise KeyError(f'no target for view {view}')
            self.targets[view] = self.target_fn(view)
        return self.targets[view]

    def feature(self, view: int) -> Any:
        """The online backbone's output on ``view`` (with gradient); a view
        the framework did not run through the online encoder (MoCo's key)
        is run now, once."""
        if view not in self.features:
            if not 0 <= view < len(self.inputs):
                raise ValueError(f'view {view} does not exist: the batch has '
                                 f'{len(self.inputs)} view(s); set '
                                 "dict(type='MultiView', num_views=...) in "
                                 'the train pipeline')
            self.features[view] = self.model.backbone(self.inputs[view])
        return self.features[view]

    def neck_out(self, view: int) -> tuple:
        """The online neck's whole output on ``view`` (see
        :meth:`feature`)."""
        if view not in self.neck_outs:
            self.neck_outs[view] = self.model.neck(self.feature(view))
        return self.neck_outs[view]

    def projection(self, view: int) -> torch.Tensor:
        """The online projection ``neck(backbone(x_view))[0]``."""
        return self.neck_out(view)[0]

    def query(self, view: int) -> torch.Tensor:
        """``normalize(projection(view))``, computed once."""
        if view not in self.queries:
            self.queries[view] = F.normalize(self.projection(view), dim=1)
        return self.queries[view]


def moco_step(model: nn.Module, views: List[torch.Tensor],
              negatives: torch.Tensor, enqueue: Callable[[torch.Tensor], None],
              key_view: int = 1, shuffle: bool = True) -> SiameseStep:
    """MoCo's step, of MMPretrain's ``MoCo`` and of RingMoCo: view
    ``key_view`` is the key, every other view a query::

        q_v = normalize(neck(backbone(x_v))[0])
        k = normalize(neck_k(backbone_k(x_key))[0])     # momentum encoder
        L = mean_v CE([q_v . k, q_v . negatives^T] / tau, 0)  # ``head``

    The momentum encoder (``model.encoder_k``, an EMA of ``backbone +
    neck``) is updated first; keys are computed on the batch shuffled across
    ranks (``batch_shuffle_ddp``) if ``shuffle``; ``negatives`` (K, D) are
    normalised; ``commit`` is ``enqueue(k)``."""
    qviews = [v for v in range(len(views)) if v != key_view]
    features = {v: model.backbone(views[v]) for v in qviews}
    outs = {v: model.neck(features[v]) for v in qviews}
    with torch.no_grad():
        model.encoder_k.update_parameters(
            nn.Sequential(model.backbone, model.neck))
    target_features = {}

    @torch.no_grad()
    def keys(v):  # normalised momentum keys of view v, in batch order
        x, idx = batch_shuffle_ddp(views[v]) if shuffle else (views[v], None)
        feats = model.encoder_k.module[0](x)

        def restore(t):  # rows computed from ``feats`` in batch order
            return t if idx is None else batch_unshuffle_ddp(t, idx)

        target_features[v] = (feats, restore)
        return F.normalize(restore(model.encoder_k.module[1](feats)[0]),
                           dim=1)

    k = keys(key_view)
    queries = {v: F.normalize(outs[v][0], dim=1) for v in qviews}
    loss = sum(
        model.head.loss(
            torch.einsum('nc,nc->n', [q, k]).unsqueeze(-1),
            torch.einsum('nc,kc->nk', [q, negatives]))
        for q in queries.values()) / len(queries)
    return SiameseStep(
        loss=loss,
        online=[outs[v][0] for v in qviews],
        targets={key_view: k},
        negatives=negatives,
        commit=lambda: enqueue(k),
        target_fn=keys,
        framework='moco',
        views=qviews,
        pair=(qviews[0], key_view),
        features=features,
        neck_outs=outs,
        target_features=target_features,
        queries=queries)


def _moco(model: MoCo, inputs: List[torch.Tensor], data_samples=None):
    """MMPretrain's MoCo: view 0 the query, view 1 the key, the (D, L)
    queue and its ``_dequeue_and_enqueue``."""
    return moco_step(model, inputs[:2], model.queue.clone().detach().t(),
                     model._dequeue_and_enqueue)


def _simclr(model: SimCLR, inputs: List[torch.Tensor], data_samples=None):
    x = torch.stack(inputs, 1)
    n = x.size(0)
    b = model.backbone(x.reshape((n * 2, ) + x.shape[2:]))
    out = model.neck(b)
    z = out[0]
    s = z / (torch.norm(z, p=2, dim=1, keepdim=True) + 1e-10)
    s = torch.cat(GatherLayer.apply(s), dim=0)
    s = torch.matmul(s, s.permute(1, 0))
    # MMPretrain's masks, as static-shape gathers (its masked_select has a
    # data-dependent shape: a host synchronisation on CUDA): the
    # off-diagonal (N, N - 1) similarities in row order; rows 2k and 2k + 1
    # (the two views of sample k) have their positive in column 2k
    m = s.size(0)
    s = s.flatten()[1:].view(m - 1, m + 1)[:, :-1].reshape(m, m - 1)
    pos_col = torch.arange(m, device=s.device).div(
        2, rounding_mode='floor').mul(2).unsqueeze(1)
    positive = s.gather(1, pos_col)
    cols = torch.arange(m - 2, device=s.device).unsqueeze(0)
    negative = s.gather(1, cols + (cols >= pos_col).long())
    per_view = z.view(n, 2, -1)
    keys = F.normalize(z.detach(), dim=1).view(n, 2, -1)

    def view_of(t, v):  # rows of view v of (2n, ...) tensors
        if isinstance(t, (tuple, list)):
            return tuple(view_of(x, v) for x in t)
        return t.view((n, 2) + t.shape[1:])[:, v]

    return SiameseStep(
        loss=model.head.loss(positive, negative),
        online=[per_view[:, 0], per_view[:, 1]],
        targets={0: keys[:, 0], 1: keys[:, 1]},
        framework='simclr',
        features={v: view_of(b, v) for v in (0, 1)},
        neck_outs={v: view_of(out, v) for v in (0, 1)})


def _latent(model, inputs: List[torch.Tensor], data_samples=None):
    """BYOL (``target_net`` gives the targets) and SimSiam (the detached
    online projections)."""
    features = {v: model.backbone(inputs[v]) for v in (0, 1)}
    outs = {v: model.neck(features[v]) for v in (0, 1)}
    z1, z2 = outs[0][0], outs[1][0]
    if isinstance(model, BYOL):
        with torch.no_grad():
            model.target_net.update_parameters(
                nn.Sequential(model.backbone, model.neck))
            t1 = model.target_net(inputs[0])[0]
            t2 = model.target_net(inputs[1])[0]
        loss = 2. * (model.head.loss(z1, t2) + model.head.loss(z2, t1))
    else:
        t1, t2 = z1.detach(), z2.detach()
        loss = 0.5 * (model.head.loss(z1, z2) + model.head.loss(z2, z1))
    return SiameseStep(
        loss=loss, online=[z1, z2], targets={0: t1, 1: t2},
        framework='byol' if isinstance(model, BYOL) else 'simsiam',
        features=features, neck_outs=outs)


#: MMPretrain's framework classes -> their step adapter; the first class of
#: the model's MRO found here is used, its name in lower case is the
#: framework's. This package's frameworks (RingMoCo, NPID) return their step
#: themselves: ``framework`` names them, ``step(inputs, data_samples)``
#: computes it.
ADAPTERS = {MoCo: _moco, SimCLR: _simclr, BYOL: _latent, SimSiam: _latent}


def _own(cls: type) -> bool:
    return isinstance(getattr(cls, 'framework', None), str)


def _adapted(cls: type) -> Optional[type]:
    return next((c for c in cls.__mro__ if c in ADAPTERS), None)


def framework_of(model) -> str:
    """The framework name of ``model`` (a class or an instance): ``'moco'``,
    ``'simclr'``, ``'byol'``, ``'simsiam'`` or ``'npid'``."""
    cls = model if isinstance(model, type) else type(model)
    if _own(cls):
        return cls.framework
    if _adapted(cls) is None:
        raise TypeError(
            f'{cls.__name__} is not one of the two-view frameworks '
            f"{['RingMoCo', 'NPID'] + [c.__name__ for c in ADAPTERS]}")
    return _adapted(cls).__name__.lower()


def siamese_step(model: nn.Module,
                 inputs: List[torch.Tensor],
                 data_samples: Optional[list] = None) -> SiameseStep:
    """One step of ``model``'s framework on the views ``inputs`` (and, for
    NPID, the batch's ``data_samples``); nothing of the framework's state is
    updated until ``step.commit()``, except what its loss updates first
    (momentum encoders)."""
    name = framework_of(model)
    views = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    if name != 'npid' and len(views) < 2:
        raise ValueError(
            f'{type(model).__name__} needs two views per sample, got '
            f"{len(views)}: set dict(type='MultiView', num_views=2) in the "
            'train pipeline')
    if _own(type(model)):
        step = model.step(views, data_samples)
    else:
        step = ADAPTERS[_adapted(type(model))](model, views, data_samples)
    step.model = model
    step.inputs = views
    return step
