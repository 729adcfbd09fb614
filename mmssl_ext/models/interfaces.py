"""What the hooks ask of a model: the declared hook <-> model interface.

A hook never reaches into a model's attributes: it finds the per-sample
state by type (:func:`~mmssl_ext.models.memories.find_memories`) and asks
the model through one of these protocols (checked with ``isinstance``).
"""
from typing import Dict, Protocol, runtime_checkable

import torch


@runtime_checkable
class Clusterable(Protocol):
    """A model whose training set ``OfflineClusterHook`` clusters into the
    model's pseudo-label memory (DeepCluster, ODC, the inter-image branch of
    InterCLR)."""

    def clustering_feature(self, inputs: torch.Tensor) -> torch.Tensor:
        """(B, D) features of ``inputs`` that are clustered."""


@runtime_checkable
class Diagnosable(Protocol):
    """A model ``DiagnosticsHook`` diagnoses against the true labels."""

    def diagnostics(self, true_labels: torch.Tensor) -> Dict[str, float]:
        """Scalar diagnostics of the mechanism (monitoring only)."""


@runtime_checkable
class LossWeighted(Protocol):
    """A model whose loss terms have weights ``ModelParamScheduleHook``
    schedules, each named by the key it is logged under (``loss_intra``,
    ``loss_inter``, ``loss_group``, ``loss_bsim`` ...)."""

    def loss_weights(self) -> Dict[str, float]:
        """Log key of every weighted term -> its weight now."""

    def set_loss_weight(self, key: str, value: float) -> None:
        """Set the weight of the term logged as ``key``."""
