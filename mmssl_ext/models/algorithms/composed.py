"""Composition: a two-view framework plus branches, by configuration.

InterCLR's inter-image branch, CLD's group branch and BSIM's mixture term
are *branches*: modules with their own loss weight that read one step of a
framework (:func:`~mmssl_ext.models.algorithms.siamese.siamese_step`) and
add a term to its objective. ``ComposedSSL`` attaches any list of them to
any of the frameworks the step knows (MMPretrain's MoCo, SimCLR, BYOL,
SimSiam; this package's RingMoCo and NPID)::

    model = dict(
        type='ComposedSSL',
        base=dict(type='BYOL', backbone=..., neck=..., head=...),
        branches=[dict(type='InterImageBranch', ...),
                  dict(type='GroupBranch', ...),
                  dict(type='MixtureBranch', ...)])

The composed model *is* the framework (an instance of a subclass of the base
class): its modules, state-dict keys, ``extract_feat`` and hooks are the
framework's, the branches live under ``branches.<i>``, so every tool that
reads the framework's checkpoints reads the composed ones.

One step (:meth:`Composition.loss`)::

    step = siamese_step(model, views)              # the framework's loss
    losses = {base_loss_key: base_loss_weight * step.loss}
    for branch in branches: losses |= branch.loss(model, step, samples)
    step.commit()                                   # the framework's update
    for branch in branches: losses |= branch.commit()   # the branches'

so every branch reads the state (queue, memories) the framework's loss saw,
and every state update happens after all the terms.
"""
import functools
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.model import BaseModule

from mmssl_ext.registry import MODELS
from .siamese import SiameseStep, framework_of, siamese_step

__all__ = ['BaseBranch', 'Composition', 'ComposedSSL', 'composed_class']


def build_module(cfg):
    """Build a module config in the mmssl_ext scope (whatever the config's
    ``default_scope``), or return an already built module."""
    if isinstance(cfg, nn.Module):
        return cfg
    cfg = dict(cfg)
    cfg.setdefault('_scope_', 'mmssl_ext')
    return MODELS.build(cfg)


def check_weight(value, key: str) -> float:
    if isinstance(value, bool) or not isinstance(
            value, (int, float)) or not value >= 0:
        raise ValueError(f'{key}={value!r} must be a number >= 0')
    return float(value)


class BaseBranch(BaseModule):
    """A term added to a framework's objective.

    A branch owns its loss weight (``loss_weight``, checked here: the
    branch's constructor is where it enters), its modules and its state
    (memories, in persistent buffers). The composed model calls, per
    iteration and in this order: :meth:`check_ready`, the framework's step,
    :meth:`loss` (read-only on every state), the framework's commit, then
    :meth:`commit` (the branch's own state updates). ``loss_keys`` are the
    keys it returns (two branches may not log the same key).
    """
    loss_keys: Tuple[str, ...] = ()
    key: str = 'branch'

    def __init__(self, loss_weight: float = 1.0, key: str = 'loss_weight',
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.loss_weight = check_weight(loss_weight, key)

    def attach(self, model: nn.Module, key: str) -> None:
        """Check the branch against the built framework ``model`` and build
        what depends on it; ``key`` names the branch in error messages
        (``model.branches[i]``)."""
        self.key = key

    def check_ready(self) -> None:
        """Raise before the step if the branch cannot run yet."""

    def loss(self, model: nn.Module, step: SiameseStep,
             data_samples: Optional[list]) -> Dict[str, torch.Tensor]:
        """The branch's weighted loss(es) and diagnostics."""
        raise NotImplementedError

    def commit(self) -> Dict[str, torch.Tensor]:
        """Update the branch's state from what :meth:`loss` computed;
        returns diagnostics to log."""
        return {}


class Composition:
    """Mixin: a two-view framework (the next class in the MRO) plus
    branches. Use :func:`ComposedSSL` in configs; the method classes
    (``InterCLRMoCo``, ``MoCoCLD``, ``NPIDCLD``, ``BSIM*``) are fixed
    compositions.

    Args:
        *args, **kwargs: the framework's arguments.
        branches (list[dict]): branch configs (``InterImageBranch``,
            ``GroupBranch``, ``MixtureBranch`` ...), in the order their
            terms are computed.
        base_loss_weight (float): weight of the framework's loss. Defaults
            to 1.0.
        base_loss_key (str): the key it is logged under. Defaults to
            ``'loss_base'``.
    """
    def __init__(self,
                 *args,
                 branches: Sequence = (),
                 base_loss_weight: float = 1.0,
                 base_loss_key: str = 'loss_base',
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.base_loss_weight = check_weight(base_loss_weight,
                                             'model.base_loss_weight')
        if not (isinstance(base_loss_key, str)
                and base_loss_key.startswith('loss')):
            raise ValueError(f'model.base_loss_key={base_loss_key!r} must '
                             "start with 'loss' (only such keys are "
                             'optimised)')
        self.base_loss_key = base_loss_key
        if isinstance(branches, (dict, nn.Module)):
            branches = [branches]
        self.branches = nn.ModuleList()
        seen = {base_loss_key: 'the framework'}
        for i, cfg in enumerate(branches):
            key = f'model.branches[{i}]'
            branch = build_module(cfg)
            if not isinstance(branch, BaseBranch):
                raise TypeError(f'{key} must be a branch (InterImageBranch, '
                                'GroupBranch, MixtureBranch ...), got '
                                f'{type(branch).__name__}')
            for k in branch.loss_keys:
                if k in seen:
                    raise ValueError(
                        f'{key} ({type(branch).__name__}) logs {k!r} as '
                        f'{seen[k]} does: a framework carries each kind of '
                        'branch once')
                seen[k] = key
            self.branches.append(branch)
            branch.attach(self, key)

    def loss(self, inputs: List[torch.Tensor], data_samples: Optional[list],
             **kwargs) -> Dict[str, torch.Tensor]:
        for branch in self.branches:
            branch.check_ready()
        step = siamese_step(self, inputs, data_samples)
        losses = {self.base_loss_key: self.base_loss_weight * step.loss}
        for branch in self.branches:
            losses.update(branch.loss(self, step, data_samples))
        step.commit()
        for branch in self.branches:
            losses.update(branch.commit())
        return losses

    def loss_weights(self) -> Dict[str, float]:
        """The weights ``ModelParamScheduleHook`` schedules, by log key:
        the framework's (``base_loss_key``) and every branch's (its first
        loss key)."""
        out = {self.base_loss_key: self.base_loss_weight}
        for branch in self.branches:
            out[branch.loss_keys[0]] = branch.loss_weight
        return out

    def set_loss_weight(self, key: str, value: float) -> None:
        if key == self.base_loss_key:
            self.base_loss_weight = float(value)
            return
        for branch in self.branches:
            if branch.loss_keys[0] == key:
                branch.loss_weight = float(value)
                return
        raise KeyError(f'{key!r} is no weighted loss of '
                       f'{type(self).__name__}: {sorted(self.loss_weights())}')

    def _owners(self, method: str) -> list:
        return [b for b in self.branches if callable(getattr(b, method,
                                                             None))]

    def clustering_feature(self, inputs: torch.Tensor) -> torch.Tensor:
        """The features ``OfflineClusterHook`` clusters: those of the one
        branch with a pseudo-label memory."""
        owners = self._owners('clustering_feature')
        if len(owners) != 1:
            raise TypeError(
                f'{type(self).__name__} has {len(owners)} branches that '
                'cluster the training set; OfflineClusterHook serves '
                'exactly one')
        return owners[0].clustering_feature(self, inputs)

    def diagnostics(self, true_labels: torch.Tensor) -> Dict[str, float]:
        """Mechanism diagnostics of the branches (``DiagnosticsHook``)."""
        out: Dict[str, float] = {}
        for branch in self._owners('diagnostics'):
            out.update(branch.diagnostics(true_labels))
        return out


@functools.lru_cache(maxsize=None)
def composed_class(base: type) -> type:
    """``Composed<Base>``: the subclass of the framework class ``base`` that
    carries branches (one class per base, created once)."""
    if issubclass(base, Composition):
        raise TypeError(f'model.base={base.__name__} already carries '
                        'branches: give the framework itself (e.g. MoCo for '
                        'BSIMMoCo) and list every branch in model.branches')
    try:
        framework_of(base)
    except TypeError as e:
        raise TypeError(f'model.base.type={base.__name__}: {e}') from None
    name = f'Composed{base.__name__}'
    return type(name, (Composition, base), {
        '__module__': __name__,
        '__qualname__': name,
        '__doc__': f'{base.__name__} plus branches (ComposedSSL).'
    })


def ComposedSSL(base: dict,
                branches: Sequence = (),
                base_loss_weight: float = 1.0,
                base_loss_key: str = 'loss_base',
                data_preprocessor: Optional[dict] = None,
                init_cfg=None) -> nn.Module:
    """Build a framework with branches (registered as ``'ComposedSSL'``).

    Args:
        base (dict): the framework's config (``type`` one of MMPretrain's
            ``MoCo``, ``SimCLR``, ``BYOL``, ``SimSiam``, or ``RingMoCo``,
            ``NPID``, or a subclass), e.g. ``{{_base_.model}}`` of a
            framework's recipe.
        branches (list[dict]): branch configs.
        base_loss_weight (float): weight of the framework's loss.
        base_loss_key (str): its log key. Defaults to ``'loss_base'``.
        data_preprocessor (dict, optional): overrides the base's (the
            Runner puts the config's top-level ``data_preprocessor`` here).
        init_cfg: overrides the base's.

    Returns:
        an instance of ``Composed<Base>`` (see :class:`Composition`).
    """
    if not isinstance(base, dict) or 'type' not in base:
        raise TypeError("model.base must be the framework's config dict "
                        f"with a 'type', got {base!r}")
    base = dict(base)
    base_type = base.pop('type')
    scope = base.pop('_scope_', None)
    if isinstance(base_type, type):
        cls = base_type
    else:
        name = (base_type if scope is None or '.' in base_type else
                f'{scope}.{base_type}')
        cls = MODELS.get(name)
        if cls is None:
            raise KeyError(f'model.base.type={base_type!r} is not a '
                           'registered model')
    if data_preprocessor is not None:
        base['data_preprocessor'] = data_preprocessor
    if init_cfg is not None:
        base['init_cfg'] = init_cfg
    return composed_class(cls)(branches=branches,
                               base_loss_weight=base_loss_weight,
                               base_loss_key=base_loss_key, **base)


MODELS.register_module(name='ComposedSSL', module=ComposedSSL)
