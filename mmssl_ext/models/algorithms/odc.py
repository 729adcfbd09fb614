"""ODC: online deep clustering."""
from typing import Dict, List, Optional, Union

import torch
from mmpretrain.structures import DataSample

from mmssl_ext.registry import MODELS
from mmssl_ext.utils.dist import get_sample_idx
from .deepcluster import PseudoLabelClassifier


@MODELS.register_module()
class ODC(PseudoLabelClassifier):
    """ODC (Zhan et al., CVPR 2020, `arXiv:2006.10645
    <https://arxiv.org/abs/2006.10645>`_), MMSelfSup's recipe.

    Per iteration: the classifier is trained on the current labels
    ``memory.label_bank[sample_idx]`` (inverse-frequency class weights in
    ``loss_weight``), then ``memory.update(sample_idx, neck_feature)``
    momentum-updates the samples memory and relabels those samples against
    the centroids; the fraction of changed labels is returned as
    ``change_ratio`` (logged, not a loss). Centroid refresh, small-cluster
    handling and the re-weighting run in
    :class:`~mmssl_ext.engine.hooks.ClusterMemoryHook`; the initial
    clustering in :class:`~mmssl_ext.engine.hooks.OfflineClusterHook`.

    Args:
        backbone, neck, head: configs (``ODCNeck`` and a
            ``LinearClsHead(num_classes=K, in_channels=256)``).
        memory (dict): ``ClusterMemory`` config (``length`` = N,
            ``feat_dim`` = neck output, ``num_clusters`` = K, ``momentum``
            weights the new feature: 0.5, ``min_cluster`` 20).
        with_sobel (bool): Sobel input. Defaults to False.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 memory: dict,
                 with_sobel: bool = False,
                 pretrained: Optional[str] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[Union[List[dict], dict]] = None):
        memory = MODELS.build(memory) if isinstance(memory, dict) else memory
        super().__init__(backbone, neck, head, memory.num_clusters,
                         with_sobel, pretrained, data_preprocessor, init_cfg)
        self.memory = memory

    def check_dataset_length(self, n: int) -> None:
        self.memory.check_length(n, key='model.memory.length')

    def cluster_labels(self) -> torch.Tensor:
        return self.memory.label_bank

    def has_clusters(self) -> bool:
        """True once the memory was initialised (by the hook or a
        checkpoint)."""
        return bool(self.memory.initialized)

    @torch.no_grad()
    def set_clusters(self, feats: torch.Tensor, labels: torch.Tensor,
                     centroids: Optional[torch.Tensor] = None) -> None:
        """Initialise the memory: bank = features, labels, centroids =
        cluster means (``centroids`` from k-means are not used: they may
        live in a preprocessed space)."""
        self.memory.init_memory(feats, labels)

    def loss(self, inputs: List[torch.Tensor],
             data_samples: List[DataSample]) -> Dict[str, torch.Tensor]:
        if not bool(self.memory.initialized):
            raise RuntimeError(
                'ODC memory is not initialised: add OfflineClusterHook('
                'initial=True) to custom_hooks')
        feats = self.neck(self.extract_feat(inputs))
        idx = get_sample_idx(data_samples, device=feats[-1].device)
        labels = self.memory.label_bank[idx.to(
            self.memory.label_bank.device)].to(feats[-1].device)
        loss = self._cls_loss(feats, labels)
        change_ratio = self.memory.update(idx, feats[-1].detach())
        return dict(loss=loss, change_ratio=change_ratio)
