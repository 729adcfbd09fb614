"""NPID: non-parametric instance discrimination with a memory bank."""
from typing import Dict, List, Optional

import torch
import torch.nn.functional as F
from mmengine import dist
from mmpretrain.structures import DataSample

from mmssl_ext.registry import MODELS
from mmssl_ext.utils.dist import get_sample_idx
from mmssl_ext.utils.host_state import (host_scalar, register_host_scalar,
                                        set_host_scalar)
from mmssl_ext.utils.seeding import seeded_generator
from ..memories import FeatureMemory, build_memory
from .base import SelfSupervisor
from .siamese import SiameseStep


@MODELS.register_module()
class NPID(SelfSupervisor):
    """NPID (Wu et al., CVPR 2018, `arXiv:1805.01978
    <https://arxiv.org/abs/1805.01978>`_), as in MMSelfSup, or with the full
    non-parametric softmax (lemniscate's ``LinearAverage``, CLD's instance
    branch).

    Per iteration, for the L2-normalised features ``f_v`` (neck output) of
    every view ``v`` of the batch and its data-set indices ``i``:

    * sampled negatives (``neg_num`` an int): positive logit
      ``<f_v, bank[i]>`` and ``neg_num`` negative logits ``<f_v, bank[j]>``
      with ``j`` drawn uniformly from the whole bank (with replacement;
      ``ensure_neg`` redraws any ``j == i``); loss ``CE([pos, neg] / T, 0)``
      (the ``ContrastiveHead``, T = 0.07);
    * full softmax (``neg_num=None``): ``CE(f_v @ bank^T / T, i)`` over all
      N entries, T the head's temperature;
    * the loss is the mean over the views (one view: the NPID paper), all
      against the bank as it was before this iteration;
    * then ``memory.update(i, f_v)`` once per view, the last view first (the
      order in which the official CLD code's in-backward updates run; see
      :class:`~mmssl_ext.models.memories.FeatureMemory` for the momentum
      convention: ``momentum`` weights the new feature, 0.5 in NPID).

    Args:
        backbone (dict): backbone config.
        neck (dict): e.g. ``LinearNeck(in, 128, gap_dim=2)``; its first
            output is the instance feature.
        head (dict): ``ContrastiveHead`` config (its temperature is T).
        memory (dict): ``FeatureMemory`` config; ``length`` must equal the
            training set length (checked before training by
            ``MemoryCheckHook``).
        neg_num (int, optional): negatives per sample (65536); None for the
            full softmax over the bank. Defaults to 65536.
        ensure_neg (bool): redraw negatives equal to the positive.
        seed (int): seed of the negative sampling (with the rank and the
            persistent iteration counter ``num_iters``, a buffer of the
            sampled variant only).
        pretrained, data_preprocessor, init_cfg: as BaseSelfSupervisor.

    Inputs: one or more views; data samples must carry ``sample_idx``
    (``PackInputs``).
    """
    framework = 'npid'

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 memory: dict,
                 neg_num: Optional[int] = 65536,
                 ensure_neg: bool = False,
                 seed: int = 0,
                 **kwargs):
        super().__init__(backbone=backbone, neck=neck, head=head, **kwargs)
        if neg_num is not None and neg_num < 1:
            raise ValueError(f'neg_num={neg_num} must be >= 1 (or None for '
                             'the full softmax)')
        self.memory = build_memory(memory, FeatureMemory)
        self.neg_num = None if neg_num is None else int(neg_num)
        self.ensure_neg = ensure_neg
        self.seed = int(seed)
        if self.neg_num is not None:
            register_host_scalar(self, 'num_iters', 0)
        if ensure_neg and self.memory.length < 2:
            raise ValueError('ensure_neg=True needs memory.length >= 2')

    def _sample_negatives(self, idx: torch.Tensor) -> torch.Tensor:
        """(B, neg_num) uniform bank indices from a generator on the bank's
        device seeded with (``seed``, rank, ``num_iters``): different on
        every rank and iteration, and repeated exactly by a resumed run on
        the same kind of device. Drawn where the bank lives: on a GPU a
        CPU draw of B x 65,536 indices plus its host-to-device copy would
        cost more than the rest of the memory-bank work."""
        n = self.memory.length
        dev = self.memory.bank.device
        g = seeded_generator(self.seed, dist.get_rank(),
                             host_scalar(self, 'num_iters'), device=dev)
        # ensure_neg: uniform over the other n - 1 rows in one draw (no
        # redraw loop reading the conflicts back): r in [0, n - 1), skip idx
        neg = torch.randint(0, n - 1 if self.ensure_neg else n,
                            (idx.numel(), self.neg_num), generator=g,
                            device=dev)
        if self.ensure_neg:
            neg += (neg >= idx.to(dev).unsqueeze(1)).long()
        return neg.to(idx.device)

    def instance_loss(self, feats: List[torch.Tensor],
                      idx: torch.Tensor) -> torch.Tensor:
        """Mean over the views of the instance loss of the normalised
        features ``feats`` against the bank as it is now."""
        if self.neg_num is None:
            # snapshot: the update after the loss must not touch the graph
            bank = self.memory.bank.clone().to(feats[0].dtype)
            t = self.head.temperature
            return sum(F.cross_entropy(f.mm(bank.t()) / t, idx)
                       for f in feats) / len(feats)
        bank = self.memory.bank
        pos_feat = bank[idx.to(bank.device)]
        losses = []
        for f in feats:
            neg_idx = self._sample_negatives(idx.to(bank.device))
            pos = (f * pos_feat.to(f)).sum(1, keepdim=True)
            neg = torch.bmm(bank[neg_idx].to(f), f.unsqueeze(2)).squeeze(2)
            losses.append(self.head.loss(pos, neg))
        return sum(losses) / len(losses)

    @torch.no_grad()
    def update_memory(self, feats: List[torch.Tensor],
                      idx: torch.Tensor) -> None:
        """Write the views' features into the bank (the last view first)
        and count the iteration."""
        for f in reversed(feats):
            self.memory.update(idx, f.detach())
        if self.neg_num is not None:
            set_host_scalar(self, 'num_iters',
                            host_scalar(self, 'num_iters') + 1)

    def step(self, inputs: List[torch.Tensor],
             data_samples: List[DataSample]) -> SiameseStep:
        """One NPID step (:class:`SiameseStep`): the instance loss of every
        view against the bank; ``commit`` writes the bank."""
        views = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        features = {v: self.backbone(x) for v, x in enumerate(views)}
        outs = {v: self.neck(f) for v, f in features.items()}
        feats = [F.normalize(outs[v][0], dim=1) for v in range(len(views))]
        idx = get_sample_idx(data_samples, device=feats[0].device,
                             length=self.memory.length)
        return SiameseStep(
            loss=self.instance_loss(feats, idx),
            online=[outs[v][0] for v in range(len(views))],
            targets={v: f.detach() for v, f in enumerate(feats)},
            commit=lambda: self.update_memory(feats, idx),
            framework='npid',
            features=features,
            neck_outs=outs,
            queries=dict(enumerate(feats)))

    def loss(self, inputs: List[torch.Tensor],
             data_samples: List[DataSample]) -> Dict[str, torch.Tensor]:
        step = self.step(inputs, data_samples)
        step.commit()
        return dict(loss=step.loss)
