"""DeepCluster, and the pseudo-label classification base it shares with
ODC."""
from typing import Dict, List, Optional, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.models import BaseSelfSupervisor
from mmpretrain.structures import DataSample

from mmssl_ext.registry import MODELS
from mmssl_ext.utils.dist import get_sample_idx


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


class PseudoLabelClassifier(BaseSelfSupervisor):
    """Base of the clustering methods that classify samples into their
    cluster (DeepCluster, ODC): backbone (optionally after :class:`Sobel`)
    -> neck -> classification head (an MMPretrain ``LinearClsHead``) over
    ``num_clusters`` pseudo-classes.

    Loss: ``sum_b w[y_b] * CE(logits_b, y_b) / sum_b w[y_b]`` computed by the
    head's ``loss_module`` (MMPretrain ``CrossEntropyLoss``), with the
    persistent buffer ``loss_weight`` (K,) as per-class weights. Uniform
    weights (the default) give the plain mean CE; :meth:`set_reweight`
    sets ODC's inverse-frequency weights ``w_c ~ (1 / n_c) ** pow``
    (normalised to sum 1).

    Interface used by :class:`~mmssl_ext.engine.hooks.OfflineClusterHook`
    and :class:`~mmssl_ext.engine.hooks.ClusterMemoryHook`:
    ``num_clusters``, :meth:`check_dataset_length`,
    :meth:`clustering_feature`, :meth:`set_clusters`, :meth:`has_clusters`,
    :meth:`cluster_labels`, :meth:`set_reweight`, :meth:`reset_head`.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 num_clusters: int,
                 with_sobel: bool = False,
                 pretrained: Optional[str] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[Union[List[dict], dict]] = None):
        super().__init__(
            backbone=backbone,
            neck=neck,
            head=head,
            pretrained=pretrained,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        if num_clusters < 1:
            raise ValueError(f'num_clusters={num_clusters} must be >= 1')
        head_k = getattr(self.head, 'num_classes', num_clusters)
        if head_k != num_clusters:
            raise ValueError(f'model.head.num_classes={head_k} must equal '
                             f'num_clusters={num_clusters}')
        self.num_clusters = int(num_clusters)
        self.with_sobel = with_sobel
        self.sobel = Sobel() if with_sobel else None
        self.register_buffer('loss_weight',
                             torch.full((num_clusters, ), 1. / num_clusters))

    # ---------------------------------------------------------- features
    def extract_feat(self, inputs, **kwargs):
        """Backbone features (after Sobel if enabled) of ``inputs`` (tensor
        or list of views: the first is used)."""
        if isinstance(inputs, (list, tuple)):
            inputs = inputs[0]
        if self.sobel is not None:
            inputs = self.sobel(inputs)
        return self.backbone(inputs)

    def clustering_feature(self, inputs: torch.Tensor) -> torch.Tensor:
        """(B, D) features that are clustered: the neck output."""
        return self.neck(self.extract_feat(inputs))[-1].flatten(1)

    # -------------------------------------------------------- cluster API
    def cluster_labels(self) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def diagnostics(self, true_labels: torch.Tensor) -> Dict[str, float]:
        """NMI and purity of the pseudo-labels against the true labels
        (:class:`~mmssl_ext.engine.hooks.DiagnosticsHook`; monitoring)."""
        from mmssl_ext.evaluation.functional import pseudo_label_quality
        return pseudo_label_quality(self.cluster_labels(), true_labels)

    def has_clusters(self) -> bool:  # pragma: no cover
        raise NotImplementedError

    def check_dataset_length(self, n: int) -> None:  # pragma: no cover
        raise NotImplementedError

    def set_clusters(self, feats: torch.Tensor, labels: torch.Tensor,
                     centroids: Optional[torch.Tensor] = None
                     ) -> None:  # pragma: no cover
        raise NotImplementedError

    @torch.no_grad()
    def set_reweight(self, labels: Optional[torch.Tensor] = None,
                     power: float = 0.5) -> None:
        """``loss_weight[c] = (1 / n_c) ** power / sum`` from the cluster
        sizes of ``labels`` (default: :meth:`cluster_labels`); empty
        clusters get the weight of size 1e-10 (as MMSelfSup)."""
        if labels is None:
            labels = self.cluster_labels()
        hist = torch.bincount(labels.view(-1).long().clamp(min=0),
                              minlength=self.num_clusters).double()
        inv = (1. / (hist + 1e-10))**power
        self.loss_weight.copy_((inv / inv.sum()).to(self.loss_weight))

    @torch.no_grad()
    def reset_head(self, seed: int = 0) -> None:
        """Re-initialise the classifier's linear layers (weights ~ N(0,
        0.01), bias 0) from a CPU generator seeded with ``seed`` -- the same
        on every rank, so no broadcast is needed. DeepCluster does this
        after every clustering (the classes are new)."""
        g = torch.Generator().manual_seed(int(seed))
        for m in self.head.modules():
            if isinstance(m, nn.Linear):
                m.weight.copy_(
                    torch.randn(m.weight.shape, generator=g) * 0.01)
                if m.bias is not None:
                    m.bias.zero_()

    # --------------------------------------------------------------- loss
    def _cls_loss(self, feats, labels: torch.Tensor) -> torch.Tensor:
        logits = self.head(feats)
        w = self.loss_weight.to(logits)[labels]
        return self.head.loss_module(logits, labels, weight=w,
                                     avg_factor=w.sum())

    def _check_labels(self, labels: torch.Tensor) -> None:
        if (labels < 0).any():
            raise RuntimeError(
                f'{type(self).__name__} has no cluster labels for some '
                'samples yet: add OfflineClusterHook(initial=True) to '
                'custom_hooks (it clusters the training set before training)')


@MODELS.register_module()
class DeepCluster(PseudoLabelClassifier):
    """DeepCluster (Caron et al., ECCV 2018, `arXiv:1807.05520
    <https://arxiv.org/abs/1807.05520>`_), MMSelfSup's recipe.

    Pseudo-labels live in the model: the persistent buffer
    ``pseudo_labels`` (N,) indexed by each sample's ``sample_idx``
    (``-1`` = not clustered yet). They are written by
    :class:`~mmssl_ext.engine.hooks.OfflineClusterHook` (k-means of
    :meth:`clustering_feature` on the whole training set, then
    :meth:`reset_head`) and read in :meth:`loss`, so data-loader workers --
    persistent or not -- never hold labels (MMSelfSup 1.x kept them on the
    data set, where persistent workers served the first clustering's labels
    forever) and a checkpoint holds them.

    Args:
        backbone, neck, head: configs (``GlobalAveragePooling`` neck and a
            ``LinearClsHead(num_classes=num_clusters)``).
        num_clusters (int): K (10000 on ImageNet).
        length (int): N, the training set length.
        with_sobel (bool): grayscale + Sobel input (backbone
            ``in_channels=2``). Defaults to True (the published model).
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 num_clusters: int,
                 length: int,
                 with_sobel: bool = True,
                 pretrained: Optional[str] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[Union[List[dict], dict]] = None):
        super().__init__(backbone, neck, head, num_clusters, with_sobel,
                         pretrained, data_preprocessor, init_cfg)
        if not 1 <= num_clusters <= length:
            raise ValueError(f'num_clusters={num_clusters} must be in '
                             f'[1, length={length}] (the data set length)')
        self.length = int(length)
        self.register_buffer('pseudo_labels',
                             torch.full((length, ), -1, dtype=torch.long))

    def check_dataset_length(self, n: int) -> None:
        if int(n) != self.length:
            raise ValueError(f'model.length={self.length} but the training '
                             f'data set has {n} samples: set length={n}')

    def cluster_labels(self) -> torch.Tensor:
        return self.pseudo_labels

    def has_clusters(self) -> bool:
        """True once every sample has a pseudo-label."""
        return bool((self.pseudo_labels >= 0).all())

    @torch.no_grad()
    def set_clusters(self, feats: Optional[torch.Tensor],
                     labels: torch.Tensor,
                     centroids: Optional[torch.Tensor] = None) -> None:
        """Store new pseudo-labels (N,) (same on every rank)."""
        labels = torch.as_tensor(labels).long().view(-1)
        if labels.numel() != self.length:
            raise ValueError(f'expected {self.length} labels, got '
                             f'{labels.numel()}')
        if int(labels.min()) < 0 or int(labels.max()) >= self.num_clusters:
            raise ValueError(f'labels must be in [0, {self.num_clusters})')
        self.pseudo_labels.copy_(labels.to(self.pseudo_labels.device))

    def loss(self, inputs: List[torch.Tensor],
             data_samples: List[DataSample]) -> Dict[str, torch.Tensor]:
        idx = get_sample_idx(data_samples,
                             device=self.pseudo_labels.device)
        labels = self.pseudo_labels[idx]
        self._check_labels(labels)
        feats = self.neck(self.extract_feat(inputs))
        labels = labels.to(feats[-1].device)
        return dict(loss=self._cls_loss(feats, labels))
