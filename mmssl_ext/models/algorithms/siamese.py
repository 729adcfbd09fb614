"""One declared interface to the two-view ("Siamese") frameworks.

A method that adds a term to a framework's objective -- BSIM's mixture
term; InterCLR's inter-image or CLD's group branch on any base -- needs more
than the framework's loss: the online projections, the targets the other
view is pulled to, the shared negatives, and the moment the framework
updates its state (MoCo's enqueue) so that the added term reads the state
the framework's loss saw. MMPretrain's algorithms return the loss only, so
:func:`siamese_step` re-expresses each framework's ``loss()`` from its own
parts (backbone, neck, head, momentum encoder, queue), operation for
operation, and returns a :class:`SiameseStep`. ``tests/test_models/
test_algorithms/test_siamese.py`` checks that every step gives the loss and
state of the framework's own ``loss()`` bit for bit.

Frameworks: MMPretrain's ``MoCo``, ``SimCLR``, ``BYOL``, ``SimSiam`` and
this package's :class:`~mmssl_ext.models.algorithms.RingMoCo` (and their
subclasses).
"""
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.models.selfsup import BYOL, MoCo, SimCLR, SimSiam
from mmpretrain.models.selfsup.simclr import GatherLayer
from mmpretrain.models.utils import batch_shuffle_ddp, batch_unshuffle_ddp

from .ring_moco import RingMoCo


@dataclass
class SiameseStep:
    """What one step of a two-view framework computed.

    Attributes:
        loss (Tensor): the framework's objective, as its ``loss()`` returns
            it.
        online (list[Tensor]): ``online[v]``: the online projection
            ``neck(backbone(x_v))[0]`` of view ``v`` (with gradient, not
            normalised); MoCo: the query view(s) only.
        targets (dict[int, Tensor]): ``targets[v]``: what the framework
            pulls the *other* view towards, without gradient: MoCo's
            normalised momentum keys, SimCLR's normalised projections,
            BYOL's target-network projections, SimSiam's detached online
            projections. :meth:`target` computes a missing one.
        negatives (Tensor, optional): (K, D) normalised negatives shared by
            every query, as the framework's loss saw them (MoCo's queue);
            None for the frameworks without a memory of negatives.
        commit (callable): the state update the framework makes after its
            loss (MoCo: enqueue the keys); call it once, after every added
            term has read ``negatives``.
    """
    loss: torch.Tensor
    online: List[torch.Tensor]
    targets: Dict[int, torch.Tensor]
    negatives: Optional[torch.Tensor] = None
    commit: Callable[[], None] = lambda: None
    target_fn: Optional[Callable[[int], torch.Tensor]] = field(
        default=None, repr=False)

    def target(self, view: int) -> torch.Tensor:
        """``targets[view]``, computed (and kept) if the framework's loss
        did not need it (MoCo: the momentum keys of a query view)."""
        if view not in self.targets:
            if self.target_fn is None:
                raise KeyError(f'no target for view {view}')
            self.targets[view] = self.target_fn(view)
        return self.targets[view]


@torch.no_grad()
def _moco_keys(model: MoCo, x: torch.Tensor) -> torch.Tensor:
    x, idx_unshuffle = batch_shuffle_ddp(x)
    k = F.normalize(model.encoder_k(x)[0], dim=1)
    return batch_unshuffle_ddp(k, idx_unshuffle)


def _moco(model: MoCo, inputs: List[torch.Tensor]) -> SiameseStep:
    z = model.neck(model.backbone(inputs[0]))[0]
    q = F.normalize(z, dim=1)
    with torch.no_grad():
        model.encoder_k.update_parameters(
            nn.Sequential(model.backbone, model.neck))
    k = _moco_keys(model, inputs[1])
    queue = model.queue.clone().detach()
    l_pos = torch.einsum('nc,nc->n', [q, k]).unsqueeze(-1)
    l_neg = torch.einsum('nc,ck->nk', [q, queue])
    return SiameseStep(
        loss=model.head.loss(l_pos, l_neg),
        online=[z],
        targets={1: k},
        negatives=queue.t(),
        commit=lambda: model._dequeue_and_enqueue(k),
        target_fn=lambda v: _moco_keys(model, inputs[v]))


def _simclr(model: SimCLR, inputs: List[torch.Tensor]) -> SiameseStep:
    x = torch.stack(inputs, 1)
    n = x.size(0)
    z = model.neck(model.backbone(x.reshape((n * 2, ) + x.shape[2:])))[0]
    s = z / (torch.norm(z, p=2, dim=1, keepdim=True) + 1e-10)
    s = torch.cat(GatherLayer.apply(s), dim=0)
    s = torch.matmul(s, s.permute(1, 0))
    mask, pos_idx, neg_mask = model._create_buffer(s.size(0) // 2, s.device)
    s = torch.masked_select(s, mask == 1).reshape(s.size(0), -1)
    positive = s[pos_idx].unsqueeze(1)
    negative = torch.masked_select(s, neg_mask == 1).reshape(s.size(0), -1)
    per_view = z.view(n, 2, -1)
    keys = F.normalize(z.detach(), dim=1).view(n, 2, -1)
    return SiameseStep(
        loss=model.head.loss(positive, negative),
        online=[per_view[:, 0], per_view[:, 1]],
        targets={0: keys[:, 0], 1: keys[:, 1]})


def _byol(model: BYOL, inputs: List[torch.Tensor]) -> SiameseStep:
    z1 = model.neck(model.backbone(inputs[0]))[0]
    z2 = model.neck(model.backbone(inputs[1]))[0]
    with torch.no_grad():
        model.target_net.update_parameters(
            nn.Sequential(model.backbone, model.neck))
        t1 = model.target_net(inputs[0])[0]
        t2 = model.target_net(inputs[1])[0]
    loss = 2. * (model.head.loss(z1, t2) + model.head.loss(z2, t1))
    return SiameseStep(loss=loss, online=[z1, z2], targets={0: t1, 1: t2})


def _simsiam(model: SimSiam, inputs: List[torch.Tensor]) -> SiameseStep:
    z1 = model.neck(model.backbone(inputs[0]))[0]
    z2 = model.neck(model.backbone(inputs[1]))[0]
    loss = 0.5 * (model.head.loss(z1, z2) + model.head.loss(z2, z1))
    return SiameseStep(loss=loss, online=[z1, z2],
                       targets={0: z1.detach(), 1: z2.detach()})


def _ring_moco(model: RingMoCo, inputs: List[torch.Tensor]) -> SiameseStep:
    x_k, x_qs = model.split_views(inputs)
    online = [model.neck(model.backbone(x))[0] for x in x_qs]
    k = model.momentum_keys(x_k)
    negatives = model.queue()
    loss = model.contrast([F.normalize(z, dim=1) for z in online], k,
                          negatives)
    return SiameseStep(
        loss=loss,
        online=online,
        targets={model.key_view: k},
        negatives=negatives,
        commit=lambda: model.queue.enqueue(k),
        target_fn=lambda v: model.keys_of(inputs[v]))


#: framework class -> step function (the first class of the model's MRO
#: found here is used).
FRAMEWORKS = {
    RingMoCo: _ring_moco,
    MoCo: _moco,
    SimCLR: _simclr,
    BYOL: _byol,
    SimSiam: _simsiam,
}


def siamese_step(model: nn.Module,
                 inputs: List[torch.Tensor]) -> SiameseStep:
    """One step of ``model``'s framework on the views ``inputs``; nothing of
    the framework's state is updated until ``step.commit()``, except what
    its loss updates first (momentum encoders)."""
    for cls in type(model).__mro__:
        if cls in FRAMEWORKS:
            if not isinstance(inputs, (list, tuple)) or len(inputs) < 2:
                raise ValueError(
                    f'{type(model).__name__} needs two views per sample, got '
                    f'{len(inputs) if isinstance(inputs, (list, tuple)) else 1}'
                    ": set dict(type='MultiView', num_views=2) in the train "
                    'pipeline')
            return FRAMEWORKS[cls](model, list(inputs))
    raise TypeError(f'{type(model).__name__} is not one of the two-view '
                    f'frameworks {[c.__name__ for c in FRAMEWORKS]}')
