"""CLD's group branch, on any two-view framework.

Wang, Liu, Yu. "Unsupervised Feature Learning by Cross-Level
Instance-Group Discrimination", CVPR 2021: the branch groups each view's
batch and classifies every sample of one view against the other view's
group centroids (:class:`~mmssl_ext.models.cld.CLDGroupHead`).
"""
from typing import Dict, Optional, Tuple

import torch

from mmssl_ext.registry import MODELS
from mmssl_ext.utils.dist import get_gt_labels
from ..algorithms.composed import BaseBranch, build_module
from ..algorithms.siamese import SiameseStep
from .cld_head import CLDGroupHead


@MODELS.register_module()
class GroupBranch(BaseBranch):
    """CLD's group term on the step of a two-view framework::

        G_v = group projection of view v         (v = the two views below)
        loss_group = loss_weight * L_CLD(G_a, G_b)      (CLDGroupHead)

    **Views.** The first two views the framework runs through its online
    encoder: views 0 and 1 of SimCLR, BYOL, SimSiam and NPID, the two
    queries of a three-view RingMoCo (CLD's MoCo recipe). MoCo with two views
    runs one view online only: its key view is also run through the online
    encoder for this branch (one more forward and backward, as CLD's MoCo
    recipe, which has two queries per key).

    **What it contrasts against.** In-batch groups: each sample of one view
    is classified against the k-means (or normalized-cut) centroids of the
    other view's batch, the other groups being the negatives; both views
    carry gradient, through the features and the centroids. It needs
    nothing of the framework but two online views, so it is the same on
    frameworks with negatives (MoCo, SimCLR, NPID) and without (BYOL,
    SimSiam).

    **Projection.** ``neck=None`` takes the second output of the
    framework's neck (a :class:`~mmssl_ext.models.cld.CLDNeck`: instance
    and group projections on one pooled feature, CLD's design); otherwise
    the branch's own ``neck`` maps the online backbone features to the
    group space (e.g. ``CLDNeck(..., with_group=False)``, a projection of
    its own, when the framework's neck is MMPretrain's).

    Args:
        loss_weight (float): lambda. Defaults to 1.0.
        neck (dict, optional): the group projection (see above).
        **head: the arguments of :class:`CLDGroupHead`: ``num_groups`` (K,
            required), ``temperature``, ``grouping``, ``num_iters``,
            ``num_eigvecs``, ``ncut_sigma``, ``gather``.
    """
    loss_keys = ('loss_group', 'group_acc', 'group_purity')
    kwargs_of = CLDGroupHead  # **head are its arguments (config checker)

    def __init__(self,
                 loss_weight: float = 1.0,
                 neck: Optional[dict] = None,
                 init_cfg=None,
                 **head) -> None:
        super().__init__(loss_weight, init_cfg=init_cfg)
        self.head = CLDGroupHead(**head)
        self.neck = None if neck is None else build_module(neck)

    def attach(self, model, key: str) -> None:
        super().attach(model, key)
        if self.neck is None and getattr(model.neck, 'with_group',
                                         None) is False:
            raise ValueError(f'{key} reads the group projection of '
                             'model.neck, which was built with '
                             'with_group=False')

    @staticmethod
    def views(step: SiameseStep) -> Tuple[int, int]:
        """The two views the branch groups (see the class docstring)."""
        if len(step.views) >= 2:
            return step.views[0], step.views[1]
        first = step.views[0]
        other = next((v for v in range(len(step.inputs)) if v != first),
                     None)
        if other is None:
            raise ValueError('GroupBranch needs two views per sample: set '
                             "dict(type='MultiView', num_views=2) in the "
                             'train pipeline')
        return first, other

    def loss(self, model, step: SiameseStep,
             data_samples) -> Dict[str, torch.Tensor]:
        va, vb = self.views(step)
        if self.neck is None:
            outs = [step.neck_out(v) for v in (va, vb)]
            if len(outs[0]) < 2:
                raise ValueError(
                    f'{self.key}: model.neck ({type(model.neck).__name__}) '
                    'gives no group projection; give the branch its own: '
                    "neck=dict(type='CLDNeck', ..., with_group=False)")
            g = [out[1] for out in outs]
        else:
            g = [self.neck(step.feature(v))[0] for v in (va, vb)]
        out = self.head.loss(g[0], g[1], get_gt_labels(data_samples))
        out['loss_group'] = self.loss_weight * out['loss_group']
        return out
