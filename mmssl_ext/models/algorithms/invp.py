"""Invariance Propagation (Wang, Liu, Guo, Sun, NeurIPS 2020).

One augmented view per image per iteration; ``v_i = normalize(neck(backbone(
x_i)))`` (128-d; a linear or an fc-relu-fc neck) is contrasted against an
N x 128 memory bank: an instance term over the top-M background set and an
invariance term over hard positives found by propagating through a
per-sample kNN table (see :mod:`mmssl_ext.models.losses.invp_loss`).
"""
import math
from typing import Dict, List, Optional, Union

import torch
import torch.nn.functional as F
from mmengine.logging import MessageHub
from mmpretrain.models import BaseSelfSupervisor
from mmpretrain.structures import DataSample
from torch import nn

from mmssl_ext.registry import MODELS
from mmssl_ext.utils.dist import all_gather_cat, get_sample_idx
from ..losses.invp_loss import RAMP_UPS, invp_ramp_up, refresh_neighbours
from ..memories.feature_memory import FeatureMemory, last_occurrence

_BANK_INITS = ('uniform', 'normal')


@MODELS.register_module()
class InvP(BaseSelfSupervisor):
    """Invariance Propagation.

    Per iteration (all under one ``train_step``):

    1. ``v = normalize(neck(backbone(x)))`` for the batch's single view.
    2. ``loss_ins`` and, if its weight is > 0, ``loss_inv`` against the bank
       and the neighbour table as they were *before* this step (the
       authors' order); the invariance term is returned already weighted by
       ``lambda_inv * w(epoch)``.
    3. Without gradient, from all ranks' ``(idx, v)`` (all-gathered in rank
       order, so every replica does the same writes and nothing is
       broadcast): the neighbour-table rows of the batch are refreshed from
       the background search of step 2 (top ``k+1`` bank entries, the anchor
       replaced by the ``(k+1)``-th), then the bank rows are blended.
       Writing the bank inside ``loss()`` equals the authors' update after
       ``optimizer.step()``: they blend ``output.detach()``, the features of
       this forward pass.

    **Memory momentum.** Our convention: ``memory_momentum`` weights the
    NEW feature, ``bank[i] = normalize((1 - mm) * bank[i] + mm * v_i)``.
    The authors write ``normalize(m * bank[i] + (1 - m) * v_i)`` with
    ``m = 0.5``, so ``memory_momentum = 1 - m = 0.5``.

    **Epoch.** The ramp-up reads MMEngine's 0-based epoch from the message
    hub (``MessageHub.get_current_instance().get_info('epoch')``, set by
    ``RuntimeInfoHook`` before every training epoch; missing -> 0). No hook
    is needed. Under an iteration-based loop the epoch stays 0; use
    ``ramp_up='none'`` there. ``w`` uses the authors' 1-based epoch
    (``epoch + 1``): the binary ramp-up is off for the first
    ``ramp_epochs`` epochs.

    Args:
        backbone (dict): backbone config (ResNet-50, or ``ResNet_CIFAR``).
        neck (dict): projection to ``feat_dim``, with average pooling:
            ``LinearNeck(gap_dim=2, norm_cfg=None)`` (authors'
            ``nonlinearhead=0``) or ``MoCoV2Neck`` (fc-relu-fc,
            ``nonlinearhead=1``).
        head: unused, must be None (the loss is ``loss``).
        pretrained, data_preprocessor, init_cfg: as
            :class:`~mmpretrain.models.BaseSelfSupervisor`.
        data_len (int): N, the training set length (bank and table rows).
        feat_dim (int): D of the bank (128).
        memory_momentum (float): weight of the NEW feature (0.5; see above).
        bank_init (str): ``'uniform'`` (authors: ``U[-a, a]``,
            ``a = 1/sqrt(D/3)``, rows not normalised, norm ~1) or
            ``'normal'`` (unit-norm Gaussian rows, as ``FeatureMemory``).
        num_neighbours (int): k of the neighbour table (``K_nearst``, 4).
        loss (dict): :class:`~mmssl_ext.models.losses.InvPLoss` config
            (temperature, n_background, diffusion_layer, n_pos,
            hard_positive, denominator, propagation).
        lambda_inv (float): weight of the invariance term (0.6). 0 gives
            the authors' ``HardNegativePointLoss`` baseline (NPID's
            non-parametric softmax over the background set); ``loss_inv``
            is then not computed.
        ramp_up (str): ``'binary'`` (default), ``'gaussian'`` or ``'none'``.
        ramp_epochs (float): T of the ramp-up (30).
        gaussian_weight (float): 5, the Gaussian ramp-up's sharpness.
        seed (int): seed of the bank initialisation (same on every rank).
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: Optional[dict] = None,
                 pretrained: Optional[str] = None,
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = None,
                 data_len: Optional[int] = None,
                 feat_dim: int = 128,
                 memory_momentum: float = 0.5,
                 bank_init: str = 'uniform',
                 num_neighbours: int = 4,
                 loss: Optional[dict] = None,
                 lambda_inv: float = 0.6,
                 ramp_up: str = 'binary',
                 ramp_epochs: float = 30,
                 gaussian_weight: float = 5.0,
                 seed: int = 0) -> None:
        if head is not None:
            raise ValueError('InvP has no head: the projection is `neck` and '
                             'the loss is configured by `loss`')
        if neck is None:
            raise ValueError('InvP needs a `neck` projecting to feat_dim '
                             '(LinearNeck or MoCoV2Neck)')
        if data_len is None or int(data_len) < 1:
            raise ValueError('InvP needs data_len = the training set length '
                             f'(one memory-bank row per image), got '
                             f'{data_len}')
        if bank_init not in _BANK_INITS:
            raise ValueError(f'bank_init must be one of {_BANK_INITS}, got '
                             f'{bank_init!r}')
        if ramp_up not in RAMP_UPS:
            raise ValueError(f'ramp_up must be one of {RAMP_UPS}, got '
                             f'{ramp_up!r}')
        if lambda_inv < 0:
            raise ValueError(f'lambda_inv must be >= 0, got {lambda_inv}')
        if num_neighbours < 1:
            raise ValueError(f'num_neighbours must be >= 1, got '
                             f'{num_neighbours}')
        super().__init__(
            backbone=backbone,
            neck=neck,
            head=None,
            pretrained=pretrained,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        data_len = int(data_len)
        loss = dict(type='InvPLoss') if loss is None else dict(loss)
        self.loss_module = MODELS.build(loss)
        m = getattr(self.loss_module, 'n_background', None)
        if m is not None and m > data_len:
            raise ValueError(f'loss.n_background={m} exceeds data_len='
                             f'{data_len} (the background set is drawn from '
                             'the memory bank)')
        if m is not None and m < num_neighbours + 1:
            raise ValueError(f'loss.n_background={m} must be >= '
                             f'num_neighbours + 1 = {num_neighbours + 1} '
                             '(the neighbour table is read off the '
                             'background search)')
        if num_neighbours + 1 > data_len:
            raise ValueError(f'num_neighbours={num_neighbours} needs '
                             f'data_len > {num_neighbours}')
        self.data_len = data_len
        self.feat_dim = feat_dim
        self.num_neighbours = num_neighbours
        self.lambda_inv = float(lambda_inv)
        self.ramp_up = ramp_up
        self.ramp_epochs = ramp_epochs
        self.gaussian_weight = gaussian_weight
        self.memory = FeatureMemory(
            data_len, feat_dim, momentum=memory_momentum, init='random',
            seed=seed)
        if bank_init == 'uniform':
            g = torch.Generator().manual_seed(int(seed))
            a = 1. / math.sqrt(feat_dim / 3.)
            with torch.no_grad():
                self.memory.bank.copy_(
                    torch.rand(data_len, feat_dim, generator=g) * 2 * a - a)
        # authors: zero-initialised, refreshed for the batch rows only
        self.register_buffer(
            'neighbours', torch.zeros(data_len, num_neighbours,
                                      dtype=torch.long))

    # ------------------------------------------------------------------
    # declared methods (hooks / loops call these)
    # ------------------------------------------------------------------
    def current_epoch(self) -> int:
        """MMEngine's 0-based training epoch from the message hub."""
        epoch = MessageHub.get_current_instance().get_info('epoch')
        return 0 if epoch is None else int(epoch)

    def invariance_weight(self, epoch: Optional[int] = None) -> float:
        """``lambda_inv * w(epoch)`` (``epoch`` 0-based; default: the
        message hub's)."""
        if epoch is None:
            epoch = self.current_epoch()
        return self.lambda_inv * invp_ramp_up(
            epoch, self.ramp_up, self.ramp_epochs, self.gaussian_weight)

    def knn_bank(self) -> torch.Tensor:
        """The (N, D) memory bank, the train-set features of the weighted-kNN
        monitor (:class:`~mmssl_ext.engine.runners.MemoryBankKNNValLoop`)."""
        return self.memory.bank

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
        from ..losses.invp_loss import (propagate_bfs, propagate_concat,
                                        select_positives)
        nei = self.neighbours
        step = max(1, self.data_len // max_anchors)
        anchors = torch.arange(0, self.data_len, step, device=nei.device)
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
        if self.lambda_inv > 0 and hasattr(lm, 'diffusion_layer'):
            if lm.propagation == 'concat':
                cand, valid = propagate_concat(
                    nei, anchors, lm.diffusion_layer), None
            else:
                cand, valid = propagate_bfs(nei, anchors, lm.diffusion_layer)
            bank = self.memory.bank
            logits = torch.einsum('bd,bkd->bk', bank[anchors].float(),
                                  bank[cand].float())
            _, mask, sel = select_positives(logits, lm.n_pos,
                                            lm.hard_positive, valid)
            out['positive_precision'] = same_label_fraction(
                anchors, cand.gather(1, sel), true, mask)
        return out

    def check_data_len(self, n: int) -> None:
        """Raise a ValueError naming ``model.data_len`` unless it equals the
        training set length ``n``."""
        self.memory.check_length(n, key='model.data_len')

    # ------------------------------------------------------------------
    def embed(self, inputs: torch.Tensor) -> torch.Tensor:
        """``normalize(neck(backbone(x)))``, (B, feat_dim)."""
        z = self.neck(self.backbone(inputs))
        if isinstance(z, (tuple, list)):
            z = z[-1]
        z = z.flatten(1)
        if z.size(1) != self.feat_dim:
            raise ValueError(f'the neck outputs {z.size(1)} dims but '
                             f'feat_dim={self.feat_dim}: set the neck '
                             'out_channels to feat_dim')
        return F.normalize(z, dim=1)

    @torch.no_grad()
    def update_neighbours(self, idx: torch.Tensor,
                          nei: torch.Tensor) -> None:
        """Write the rows ``idx`` of the neighbour table from all ranks
        (all-gathered in rank order; a repeated index keeps its last row,
        as the bank does)."""
        idx = all_gather_cat(idx)
        nei = all_gather_cat(nei)
        keep = last_occurrence(idx)
        dev = self.neighbours.device
        self.neighbours[idx[keep].to(dev)] = nei[keep].to(dev)

    def _check_idx(self, idx: torch.Tensor) -> None:
        if idx.numel() and (int(idx.min()) < 0
                            or int(idx.max()) >= self.data_len):
            raise ValueError(
                f'sample_idx in [{int(idx.min())}, {int(idx.max())}] but '
                f'model.data_len={self.data_len}: set data_len to the '
                'training set length')

    def loss(self, inputs: Union[torch.Tensor, List[torch.Tensor]],
             data_samples: List[DataSample]) -> Dict[str, torch.Tensor]:
        """Loss terms of one batch, then the memory/table update.

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
        idx = get_sample_idx(data_samples, device=feats.device)
        self._check_idx(idx)
        bank = self.memory.bank
        weight = self.invariance_weight()
        with_inv = self.lambda_inv > 0
        out = self.loss_module(
            feats, idx.to(bank.device), bank, self.neighbours,
            with_invariance=with_inv)
        losses = dict(loss_ins=out['loss_ins'])
        if with_inv:
            l_inv = out['loss_inv']
            losses['loss_inv'] = (l_inv * weight if weight > 0 else
                                  l_inv.new_zeros(()))
            losses['inv_weight'] = l_inv.new_tensor(weight)
            losses['inv_term'] = l_inv.detach()
            losses['num_pos'] = out['num_pos']
        # state update (no gradient, identical on every rank)
        with torch.no_grad():
            nei = refresh_neighbours(out['bg_idx'], idx.to(bank.device),
                                     self.num_neighbours)
            self.update_neighbours(idx, nei)
            self.memory.update(idx, feats.detach())
        return losses
