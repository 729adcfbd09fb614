"""DeepCluster, and the pseudo-label classification base it shares with
ODC."""
from typing import Dict, List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.structures import DataSample

from mmssl_ext.registry import MODELS
from mmssl_ext.utils.dist import get_sample_idx
from mmssl_ext.utils.seeding import seeded_generator
from ..memories import ClusterState, build_memory
from .base import SelfSupervisor


class Sobel(nn.Module):
    """Fixed (non-learnable) grayscale + Sobel filtering, DeepCluster's
    input transform: RGB (B, 3, H, W) -> mean over channels -> horizontal
    and vertical Sobel responses (B, 2, H, W) (zero padding). The backbone
    then takes ``in_channels=2``."""

    def __init__(self):
        super().__init__()
        gx = torch.tensor([[1., 0., -1.], [2., 0., -2.], [1., 0., -1.]])
        self.register_buffer(
            'weight', torch.stack([gx, gx.t()]).unsqueeze(1),
            persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gray = x.mean(1, keepdim=True)
        return F.conv2d(gray, self.weight.to(gray), padding=1)


class PseudoLabelClassifier(SelfSupervisor):
    """Base of the clustering methods that classify samples into their
    cluster (DeepCluster, ODC): backbone (optionally after :class:`Sobel`)
    -> neck -> classification head (an MMPretrain ``LinearClsHead``) over
    the ``num_clusters`` pseudo-classes of ``memory`` (a pseudo-label
    memory: ``LabelMemory`` or ``ClusterMemory``).

    Loss of a batch with pseudo-labels ``y = memory.labels[sample_idx]``:
    ``sum_b w[y_b] * CE(logits_b, y_b) / sum_b w[y_b]`` computed by the
    head's ``loss_module`` (MMPretrain ``CrossEntropyLoss``), with the class
    weights ``w`` of :meth:`class_weights`: uniform (``reweight_pow=None``,
    the plain mean CE) or ODC's inverse frequencies ``w_c ~ (1 / n_c) **
    reweight_pow`` (normalised to sum 1) of the current label histogram.

    The pseudo-labels are set by
    :class:`~mmssl_ext.engine.hooks.OfflineClusterHook`, which clusters
    :meth:`clustering_feature` and may call :meth:`reset_head`.

    Args:
        backbone, neck, head: configs.
        memory (dict): the pseudo-label memory config.
        with_sobel (bool): grayscale + Sobel input.
        reweight_pow (float, optional): exponent of the inverse-frequency
            class weights; None for uniform weights.
    """
    #: what ``memory`` must build (a TypeError names it otherwise)
    memory_kind = ClusterState

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 memory: dict,
                 with_sobel: bool = False,
                 reweight_pow: Optional[float] = None,
                 **kwargs):
        super().__init__(backbone=backbone, neck=neck, head=head, **kwargs)
        self.memory = build_memory(memory, self.memory_kind)
        k = self.memory.num_clusters
        head_k = getattr(self.head, 'num_classes', k)
        if head_k != k:
            raise ValueError(f'model.head.num_classes={head_k} must equal '
                             f'model.memory.num_clusters={k}')
        if reweight_pow is not None and reweight_pow < 0:
            raise ValueError(f'reweight_pow={reweight_pow} must be >= 0 or '
                             'None')
        self.reweight_pow = reweight_pow
        self.sobel = Sobel() if with_sobel else None

    # ---------------------------------------------------------- features
    def clustering_feature(self, inputs: torch.Tensor) -> torch.Tensor:
        """(B, D) features that are clustered: the neck output."""
        return self.neck(self.extract_feat(inputs))[-1].flatten(1)

    def diagnostics(self, true_labels: torch.Tensor) -> Dict[str, float]:
        """NMI and purity of the pseudo-labels against the true labels
        (:class:`~mmssl_ext.engine.hooks.DiagnosticsHook`; monitoring)."""
        return self.memory.label_quality(true_labels)

    @torch.no_grad()
    def reset_head(self, seed: int = 0) -> None:
        """Re-initialise the classifier's linear layers (weights ~ N(0,
        0.01), bias 0) from a CPU generator seeded with ``seed`` -- the same
        on every rank, so no broadcast is needed. DeepCluster does this
        after every clustering (the classes are new)."""
        g = seeded_generator(seed)
        for m in self.head.modules():
            if isinstance(m, nn.Linear):
                m.weight.copy_(
                    torch.randn(m.weight.shape, generator=g) * 0.01)
                if m.bias is not None:
                    m.bias.zero_()

    # --------------------------------------------------------------- loss
    @torch.no_grad()
    def class_weights(self) -> torch.Tensor:
        """(K,) class weights of the loss: ``1 / K`` each, or ODC's
        ``(1 / n_c) ** reweight_pow / sum`` from the current label histogram
        (an empty cluster counts as size 1e-10, as MMSelfSup)."""
        k = self.memory.num_clusters
        if self.reweight_pow is None:
            return torch.full((k, ), 1. / k, device=self.memory.labels.device)
        hist = self.memory.histogram().double()
        inv = (1. / (hist + 1e-10))**self.reweight_pow
        return (inv / inv.sum()).float()

    def classify(self, inputs, data_samples):
        """Neck outputs, data-set indices and the weighted CE against the
        pseudo-labels of the batch."""
        if not self.memory.is_initialized():
            raise RuntimeError(
                f'{type(self).__name__}: the memory holds no pseudo-labels '
                'yet: add OfflineClusterHook(initial=True) to custom_hooks '
                '(it clusters the training set before training)')
        feats = self.neck(self.extract_feat(inputs))
        idx = get_sample_idx(data_samples, device=feats[-1].device)
        labels = self.memory.labels[idx.to(self.memory.device)].to(
            feats[-1].device)
        return feats, idx, self._cls_loss(feats, labels)

    def _cls_loss(self, feats, labels: torch.Tensor) -> torch.Tensor:
        logits = self.head(feats)
        w = self.class_weights().to(logits)[labels]
        return self.head.loss_module(logits, labels, weight=w,
                                     avg_factor=w.sum())


@MODELS.register_module()
class DeepCluster(PseudoLabelClassifier):
    """DeepCluster (Caron et al., ECCV 2018, `arXiv:1807.05520
    <https://arxiv.org/abs/1807.05520>`_), MMSelfSup's recipe.

    The pseudo-labels live in a :class:`~mmssl_ext.models.memories.
    LabelMemory` (one label per sample, ``-1`` until the first clustering),
    written by :class:`~mmssl_ext.engine.hooks.OfflineClusterHook` (k-means
    of :meth:`clustering_feature` on the whole training set, then
    :meth:`reset_head`) and read in :meth:`loss`, so data-loader workers --
    persistent or not -- never hold labels (MMSelfSup 1.x kept them on the
    data set, where persistent workers served the first clustering's labels
    forever) and a checkpoint holds them.

    Args:
        backbone, neck, head: configs (``GlobalAveragePooling`` neck and a
            ``LinearClsHead(num_classes=K)``).
        memory (dict): ``LabelMemory`` config: ``length`` = N, the training
            set length, ``num_clusters`` = K (10000 on ImageNet).
        with_sobel (bool): grayscale + Sobel input (backbone
            ``in_channels=2``). Defaults to True (the published model).
    """

    def __init__(self, *args, with_sobel: bool = True, **kwargs):
        super().__init__(*args, with_sobel=with_sobel, **kwargs)

    def loss(self, inputs: List[torch.Tensor],
             data_samples: List[DataSample]) -> Dict[str, torch.Tensor]:
        return dict(loss=self.classify(inputs, data_samples)[2])
