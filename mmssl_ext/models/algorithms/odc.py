"""ODC: online deep clustering."""
from typing import Dict, List, Optional

import torch
from mmpretrain.structures import DataSample

from mmssl_ext.registry import MODELS
from ..memories import ClusterMemory
from .deepcluster import PseudoLabelClassifier


@MODELS.register_module()
class ODC(PseudoLabelClassifier):
    """ODC (Zhan et al., CVPR 2020, `arXiv:2006.10645
    <https://arxiv.org/abs/2006.10645>`_), MMSelfSup's recipe.

    Per iteration: the classifier is trained on the current labels
    ``memory.label_bank[sample_idx]`` with inverse-frequency class weights
    (``reweight_pow`` 0.5), then ``memory.update(sample_idx,
    neck_feature)`` momentum-updates the samples memory and relabels those
    samples against the centroids; the fraction of changed labels is
    returned as ``change_ratio`` (logged, not a loss). Centroid refresh and
    small-cluster handling run in
    :class:`~mmssl_ext.engine.hooks.ClusterMemoryHook`, the initial
    clustering in :class:`~mmssl_ext.engine.hooks.OfflineClusterHook`.

    Args:
        backbone, neck, head: configs (``ODCNeck`` and a
            ``LinearClsHead(num_classes=K, in_channels=256)``).
        memory (dict): ``ClusterMemory`` config (``length`` = N,
            ``feat_dim`` = neck output, ``num_clusters`` = K, ``momentum``
            weights the new feature: 0.5, ``min_cluster`` 20).
        with_sobel (bool): Sobel input. Defaults to False.
        reweight_pow (float, optional): exponent of the inverse-frequency
            class weights. Defaults to 0.5 (ODC).
    """

    def __init__(self, *args, reweight_pow: Optional[float] = 0.5,
                 **kwargs):
        super().__init__(*args, reweight_pow=reweight_pow, **kwargs)
        if not isinstance(self.memory, ClusterMemory):
            raise TypeError('ODC updates its memory online: model.memory '
                            'must be a ClusterMemory, got '
                            f'{type(self.memory).__name__}')

    def loss(self, inputs: List[torch.Tensor],
             data_samples: List[DataSample]) -> Dict[str, torch.Tensor]:
        feats, idx, loss = self.classify(inputs, data_samples)
        return dict(loss=loss,
                    **self.memory.update(idx, feats[-1].detach()))
