"""One declared interface to the two-view ("Siamese") frameworks.

A method that adds a term to a framework's objective -- BSIM's mixture
term, InterCLR's inter-image branch, CLD's group branch, on any base (see
:mod:`mmssl_ext.models.algorithms.composed`) -- needs more than the
framework's loss: the online projections and backbone features, the
targets the other view is pulled to, the shared negatives, and the moment
the framework updates its state (MoCo's enqueue, NPID's bank writes) so
that the added term reads the state the framework's loss saw. MMPretrain's
algorithms return the loss only, so :func:`siamese_step` re-expresses each
framework's ``loss()`` from its own parts (backbone, neck, head, momentum
encoder, queue, memory), operation for operation, and returns a
:class:`SiameseStep`. ``tests/test_models/test_algorithms/test_siamese.py``
checks that every step gives the loss and state of the framework's own
``loss()`` bit for bit.

Frameworks: MMPretrain's ``MoCo``, ``SimCLR``, ``BYOL``, ``SimSiam`` and
this package's :class:`~mmssl_ext.models.algorithms.RingMoCo` and
:class:`~mmssl_ext.models.algorithms.NPID` (and their subclasses).
"""
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.models.selfsup import BYOL, MoCo, SimCLR, SimSiam
from mmpretrain.models.selfsup.simclr import GatherLayer
from mmpretrain.models.utils import batch_shuffle_ddp, batch_unshuffle_ddp

from .npid import NPID
from .ring_moco import RingMoCo


def _identity(t):
    return t


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

    def _check_view(self, view: int) -> None:
        if not 0 <= view < len(self.inputs):
            raise ValueError(f'view {view} does not exist: the batch has '
                             f'{len(self.inputs)} view(s); set '
                             "dict(type='MultiView', num_views=...) in the "
                             'train pipeline')

    def feature(self, view: int) -> Any:
        """The online backbone's output on ``view`` (with gradient); a view
        the framework did not run through the online encoder (MoCo's key)
        is run now, once."""
        if view not in self.features:
            self._check_view(view)
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


def _moco_keys(model: MoCo, x: torch.Tensor):
    """Normalised momentum keys of ``x`` in batch order and
    ``(momentum backbone output, restore)``."""
    with torch.no_grad():
        x, idx_unshuffle = batch_shuffle_ddp(x)
        feats = model.encoder_k.module[0](x)
        k = F.normalize(model.encoder_k.module[1](feats)[0], dim=1)
        k = batch_unshuffle_ddp(k, idx_unshuffle)
    return k, (feats, lambda t: batch_unshuffle_ddp(t, idx_unshuffle))


def _moco(model: MoCo, inputs: List[torch.Tensor], data_samples=None):
    b = model.backbone(inputs[0])
    out = model.neck(b)
    z = out[0]
    q = F.normalize(z, dim=1)
    with torch.no_grad():
        model.encoder_k.update_parameters(
            nn.Sequential(model.backbone, model.neck))
    k, tf = _moco_keys(model, inputs[1])
    queue = model.queue.clone().detach()
    l_pos = torch.einsum('nc,nc->n', [q, k]).unsqueeze(-1)
    l_neg = torch.einsum('nc,ck->nk', [q, queue])
    step = SiameseStep(
        loss=model.head.loss(l_pos, l_neg),
        online=[z],
        targets={1: k},
        negatives=queue.t(),
        commit=lambda: model._dequeue_and_enqueue(k),
        framework='moco',
        views=[0],
        features={0: b},
        neck_outs={0: out},
        target_features={1: tf},
        queries={0: q})

    def target_fn(v):
        key, feats = _moco_keys(model, inputs[v])
        step.target_features[v] = feats
        return key

    step.target_fn = target_fn
    return step


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


def _byol(model: BYOL, inputs: List[torch.Tensor], data_samples=None):
    b1 = model.backbone(inputs[0])
    out1 = model.neck(b1)
    b2 = model.backbone(inputs[1])
    out2 = model.neck(b2)
    z1, z2 = out1[0], out2[0]
    with torch.no_grad():
        model.target_net.update_parameters(
            nn.Sequential(model.backbone, model.neck))
        t1 = model.target_net(inputs[0])[0]
        t2 = model.target_net(inputs[1])[0]
    loss = 2. * (model.head.loss(z1, t2) + model.head.loss(z2, t1))
    return SiameseStep(loss=loss, online=[z1, z2], targets={0: t1, 1: t2},
                       framework='byol', features={0: b1, 1: b2},
                       neck_outs={0: out1, 1: out2})


def _simsiam(model: SimSiam, inputs: List[torch.Tensor], data_samples=None):
    b1 = model.backbone(inputs[0])
    out1 = model.neck(b1)
    b2 = model.backbone(inputs[1])
    out2 = model.neck(b2)
    z1, z2 = out1[0], out2[0]
    loss = 0.5 * (model.head.loss(z1, z2) + model.head.loss(z2, z1))
    return SiameseStep(loss=loss, online=[z1, z2],
                       targets={0: z1.detach(), 1: z2.detach()},
                       framework='simsiam', features={0: b1, 1: b2},
                       neck_outs={0: out1, 1: out2})


def _ring_moco(model: RingMoCo, inputs: List[torch.Tensor],
               data_samples=None):
    x_k, x_qs = model.split_views(inputs)
    views = [v for v in range(len(inputs)) if v != model.key_view]
    features = {v: model.backbone(x) for v, x in zip(views, x_qs)}
    outs = {v: model.neck(features[v]) for v in views}
    online = [outs[v][0] for v in views]
    model.momentum_update()
    with torch.no_grad():
        feats, restore = model.momentum_backbone(x_k)
        k = F.normalize(restore(model.encoder_k.module[1](feats)[0]), dim=1)
    negatives = model.queue()
    queries = {v: F.normalize(outs[v][0], dim=1) for v in views}
    loss = model.contrast([queries[v] for v in views], k, negatives)
    step = SiameseStep(
        loss=loss,
        online=online,
        targets={model.key_view: k},
        negatives=negatives,
        commit=lambda: model.queue.enqueue(k),
        framework='moco',
        views=views,
        pair=(views[0], model.key_view),
        features=features,
        neck_outs=outs,
        target_features={model.key_view: (feats, restore)},
        queries=queries)

    @torch.no_grad()
    def target_fn(v):
        f, r = model.momentum_backbone(inputs[v])
        step.target_features[v] = (f, r)
        return F.normalize(r(model.encoder_k.module[1](f)[0]), dim=1)

    step.target_fn = target_fn
    return step


def _npid(model: NPID, inputs: List[torch.Tensor], data_samples=None):
    features = {v: model.backbone(x) for v, x in enumerate(inputs)}
    outs = {v: model.neck(f) for v, f in features.items()}
    feats = [F.normalize(outs[v][0], dim=1) for v in range(len(inputs))]
    queries = dict(enumerate(feats))
    idx = model.sample_idx(data_samples, device=feats[0].device)
    loss = model.instance_loss(feats, idx)
    return SiameseStep(
        loss=loss,
        online=[outs[v][0] for v in range(len(inputs))],
        targets={v: f.detach() for v, f in enumerate(feats)},
        commit=lambda: model.update_memory(feats, idx),
        framework='npid',
        features=features,
        neck_outs=outs,
        queries=queries)


#: framework class -> (name, step function, least number of views); the
#: first class of the model's MRO found here is used.
FRAMEWORKS = {
    RingMoCo: ('moco', _ring_moco, 2),
    NPID: ('npid', _npid, 1),
    MoCo: ('moco', _moco, 2),
    SimCLR: ('simclr', _simclr, 2),
    BYOL: ('byol', _byol, 2),
    SimSiam: ('simsiam', _simsiam, 2),
}


def framework_of(model) -> str:
    """The framework name of ``model`` (a class or an instance): ``'moco'``,
    ``'simclr'``, ``'byol'``, ``'simsiam'`` or ``'npid'``."""
    cls = model if isinstance(model, type) else type(model)
    for c in cls.__mro__:
        if c in FRAMEWORKS:
            return FRAMEWORKS[c][0]
    raise TypeError(f'{cls.__name__} is not one of the two-view frameworks '
                    f'{[c.__name__ for c in FRAMEWORKS]}')


def siamese_step(model: nn.Module,
                 inputs: List[torch.Tensor],
                 data_samples: Optional[list] = None) -> SiameseStep:
    """One step of ``model``'s framework on the views ``inputs`` (and, for
    NPID, the batch's ``data_samples``); nothing of the framework's state is
    updated until ``step.commit()``, except what its loss updates first
    (momentum encoders)."""
    cls = next((c for c in type(model).__mro__ if c in FRAMEWORKS), None)
    if cls is None:
        framework_of(model)  # raises, naming the frameworks
    _, fn, least = FRAMEWORKS[cls]
    n = len(inputs) if isinstance(inputs, (list, tuple)) else 1
    if not isinstance(inputs, (list, tuple)) or n < least:
        raise ValueError(
            f'{type(model).__name__} needs two views per sample, got {n}: '
            "set dict(type='MultiView', num_views=2) in the train pipeline")
    step = fn(model, list(inputs), data_samples)
    step.model = model
    step.inputs = list(inputs)
    return step
