"""Invariance Propagation (Wang, Liu, Guo, Sun, NeurIPS 2020).

One augmented view per image per iteration; ``v_i = normalize(neck(backbone(
x_i)))`` (128-d; a linear or an fc-relu-fc neck) is contrasted against an
N x 128 memory bank: an instance term over the top-M background set and an
invariance term over hard positives found by propagating through a
per-sample kNN table (see :mod:`mmssl_ext.models.invp.invp_loss`). The
bank and the table are one :class:`~mmssl_ext.models.memories.
NeighbourMemory`.
"""
from typing import Dict, List, Optional, Union

import torch
import torch.nn.functional as F
from mmengine.logging import MessageHub
from mmpretrain.structures import DataSample

from mmssl_ext.registry import MODELS
from mmssl_ext.utils.dist import get_sample_idx
from ..algorithms.base import SelfSupervisor
from ..memories import build_memory
from .invp_loss import RAMP_UPS, invp_ramp_up
from .neighbour_memory import NeighbourMemory


@MODELS.register_module()
class InvP(SelfSupervisor):
    """Invariance Propagation.

    Per iteration (all under one ``train_step``):

    1. ``v = normalize(neck(backbone(x)))`` for the batch's single view.
    2. ``loss_ins`` and, if its weight is > 0, ``loss_inv`` against the bank
       and the neighbour table as they were *before* this step (the
       authors' order); the invariance term is returned already weighted by
       ``lambda_inv * w(epoch)``.
    3. ``memory.update(idx, v, ranked=background)``: from all ranks'
       batches, the neighbour-table rows are refreshed from the background
       search of step 2 (top ``k+1`` bank entries, the anchor replaced by
       the ``(k+1)``-th) and the bank rows are blended. Writing the bank
       inside ``loss()`` equals the authors' update after
       ``optimizer.step()``: they blend ``output.detach()``, the features of
       this forward pass.

    **Memory momentum.** ``memory.momentum`` weights the NEW feature,
    ``bank[i] = normalize((1 - mm) * bank[i] + mm * v_i)``. The authors write
    ``normalize(m * bank[i] + (1 - m) * v_i)`` with ``m = 0.5``, so
    ``momentum = 1 - m = 0.5``.

    **Epoch.** The ramp-up reads MMEngine's 0-based epoch from the message
    hub (``MessageHub.get_current_instance().get_info('epoch')``, set by
    ``RuntimeInfoHook`` before every training epoch; missing -> 0). No hook
    is needed. Under an iteration-based loop the epoch stays 0; use
    ``ramp_up='none'`` there. ``w`` uses the authors' 1-based epoch
    (``epoch + 1``): the binary ramp-up is off for the first
    ``ramp_epochs`` epochs.

    Args:
        backbone (dict): backbone config (ResNet-50, or ``ResNet_CIFAR``).
        neck (dict): projection to ``memory.feat_dim``, with average
            pooling: ``LinearNeck(gap_dim=2, norm_cfg=None)`` (authors'
            ``nonlinearhead=0``) or ``MoCoV2Neck`` (fc-relu-fc,
            ``nonlinearhead=1``).
        memory (dict): :class:`~mmssl_ext.models.memories.NeighbourMemory`
            config: ``length`` = the training set length, ``feat_dim``
            (128), ``momentum`` (0.5, see above), ``init='uniform'`` (the
            authors' ``U[-a, a]`` rows, ``a = 1/sqrt(D/3)``) or ``'random'``,
            ``num_neighbours`` (k, the authors' ``K_nearst``: 4), ``seed``.
        head: unused, must be None (the loss is ``loss``).
        loss (dict): :class:`~mmssl_ext.models.invp.InvPLoss` config
            (temperature, n_background, diffusion_layer, n_pos,
            hard_positive, denominator, propagation).
        lambda_inv (float): weight of the invariance term (0.6). 0 gives
            the authors' ``HardNegativePointLoss`` baseline (NPID's
            non-parametric softmax over the background set); ``loss_inv``
            is then not computed.
        ramp_up (str): ``'binary'`` (default), ``'gaussian'`` or ``'none'``.
        ramp_epochs (float): T of the ramp-up (30).
        gaussian_weight (float): 5, the Gaussian ramp-up's sharpness.
        pretrained, data_preprocessor, init_cfg: as
            :class:`~mmpretrain.models.BaseSelfSupervisor`.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 memory: dict,
                 head: Optional[dict] = None,
                 loss: Optional[dict] = None,
                 lambda_inv: float = 0.6,
                 ramp_up: str = 'binary',
                 ramp_epochs: float = 30,
                 gaussian_weight: float = 5.0,
                 **kwargs) -> None:
        if head is not None:
            raise ValueError('InvP has no head: the projection is `neck` and '
                             'the loss is configured by `loss`')
        if neck is None:
            raise ValueError('InvP needs a `neck` projecting to '
                             'memory.feat_dim (LinearNeck or MoCoV2Neck)')
        if ramp_up not in RAMP_UPS:
            raise ValueError(f'ramp_up must be one of {RAMP_UPS}, got '
                             f'{ramp_up!r}')
        if lambda_inv < 0:
            raise ValueError(f'lambda_inv must be >= 0, got {lambda_inv}')
        super().__init__(backbone=backbone, neck=neck, head=None, **kwargs)
        self.memory = build_memory(memory, NeighbourMemory)
        self.loss_module = MODELS.build(
            dict(type='InvPLoss') if loss is None else dict(loss))
        m = self.loss_module.n_background
        n, k = self.memory.length, self.memory.num_neighbours
        if not k + 1 <= m <= n:
            raise ValueError(
                f'loss.n_background={m} must be in [{k + 1}, {n}] = '
                '[memory.num_neighbours + 1, memory.length] (the background '
                'set comes from the bank and yields the neighbour table)')
        self.lambda_inv = float(lambda_inv)
        self.ramp_up = ramp_up
        self.ramp_epochs = ramp_epochs
        self.gaussian_weight = gaussian_weight

    def invariance_weight(self, epoch: Optional[int] = None) -> float:
        """``lambda_inv * w(epoch)`` (``epoch`` 0-based; default: the
        message hub's)."""
        if epoch is None:
            epoch = MessageHub.get_current_instance().get_info('epoch') or 0
        return self.lambda_inv * invp_ramp_up(
            int(epoch), self.ramp_up, self.ramp_epochs, self.gaussian_weight)

    @torch.no_grad()
    def diagnostics(self, true_labels: torch.Tensor,
                    max_anchors: int = 4096) -> Dict[str, float]:
        """How often the kNN graph and the propagated positives connect
        images of the same class (:class:`~mmssl_ext.engine.hooks.
        DiagnosticsHook`; monitoring only), over up to ``max_anchors``
        evenly spaced anchors whose neighbour row has been refreshed:

        * ``neighbour_precision``: fraction of the k neighbour-table entries
          that share the anchor's true label;
        * ``positive_precision``: the same for the positives the invariance
          term would use now (propagation through the table, hard-positive
          selection against the anchor's bank row as its feature).
        """
        from mmssl_ext.evaluation.functional import same_label_fraction
        from .invp_loss import propagate, select_positives
        nei, n = self.memory.neighbours, self.memory.length
        step = max(1, n // max_anchors)
        anchors = torch.arange(0, n, step, device=nei.device)
        # a refreshed row never lists its anchor k times; the zero-
        # initialised rows list sample 0 k times
        anchors = anchors[(nei[anchors] != nei[anchors][:, :1]).any(1)
                          | (nei[anchors, 0] != 0)]
        if anchors.numel() == 0:
            return {}
        true = true_labels.to(nei.device)
        out = dict(neighbour_precision=same_label_fraction(
            anchors, nei[anchors], true))
        lm = self.loss_module
        if self.lambda_inv > 0:
            cand, valid = propagate(nei, anchors, lm.diffusion_layer,
                                    lm.propagation)
            bank = self.memory.bank
            logits = torch.einsum('bd,bkd->bk', bank[anchors].float(),
                                  bank[cand].float())
            _, mask, sel = select_positives(logits, lm.n_pos,
                                            lm.hard_positive, valid)
            out['positive_precision'] = same_label_fraction(
                anchors, cand.gather(1, sel), true, mask)
        return out

    def embed(self, inputs: torch.Tensor) -> torch.Tensor:
        """``normalize(neck(backbone(x)))``, (B, feat_dim)."""
        z = self.neck(self.backbone(inputs))
        if isinstance(z, (tuple, list)):
            z = z[-1]
        z = z.flatten(1)
        if z.size(1) != self.memory.feat_dim:
            raise ValueError(f'the neck outputs {z.size(1)} dims but '
                             f'memory.feat_dim={self.memory.feat_dim}: set '
                             'the neck out_channels to feat_dim')
        return F.normalize(z, dim=1)

    def loss(self, inputs: Union[torch.Tensor, List[torch.Tensor]],
             data_samples: List[DataSample]) -> Dict[str, torch.Tensor]:
        """Loss terms of one batch, then the memory update.

        Returns:
            dict: ``loss_ins``; ``loss_inv`` (``lambda_inv * w * L_inv``,
            absent when ``lambda_inv == 0``); diagnostics without gradient:
            ``inv_weight`` (``lambda_inv * w``), ``inv_term`` (unweighted
            ``L_inv``) and ``num_pos``.
        """
        if isinstance(inputs, (list, tuple)):
            if len(inputs) != 1:
                raise ValueError(
                    f'InvP uses one augmented view per image, got '
                    f'{len(inputs)} views: use MultiView(num_views=1) or no '
                    'MultiView in the train pipeline')
            inputs = inputs[0]
        feats = self.embed(inputs)
        idx = get_sample_idx(data_samples, device=feats.device,
                             length=self.memory.length)
        mem = self.memory
        weight = self.invariance_weight()
        with_inv = self.lambda_inv > 0
        out = self.loss_module(
            feats, idx.to(mem.device), mem.bank, mem.neighbours,
            with_invariance=with_inv)
        losses = dict(loss_ins=out['loss_ins'])
        if with_inv:
            l_inv = out['loss_inv']
            losses['loss_inv'] = (l_inv * weight if weight > 0 else
                                  l_inv.new_zeros(()))
            losses['inv_weight'] = l_inv.new_full((), weight)
            losses['inv_term'] = l_inv.detach()
            losses['num_pos'] = out['num_pos']
        mem.update(idx, feats.detach(), ranked=out['bg_idx'])
        return losses
