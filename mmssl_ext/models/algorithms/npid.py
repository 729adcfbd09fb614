"""NPID: non-parametric instance discrimination with a memory bank."""
from typing import Dict, List, Optional, Union

import torch
import torch.nn.functional as F
from mmengine import dist
from mmpretrain.models import BaseSelfSupervisor
from mmpretrain.structures import DataSample

from mmssl_ext.registry import MODELS
from mmssl_ext.utils.dist import get_sample_idx
from mmssl_ext.utils.seeding import seeded_generator
from ..memories import FeatureMemory, build_memory


@MODELS.register_module()
class NPID(BaseSelfSupervisor):
    """NPID (Wu et al., CVPR 2018, `arXiv:1805.01978
    <https://arxiv.org/abs/1805.01978>`_), as in MMSelfSup.

    Per iteration, for the batch's L2-normalised features ``f`` (neck
    output) and indices ``i``:

    * positive logit ``<f, bank[i]>`` and ``neg_num`` negative logits
      ``<f, bank[j]>`` with ``j`` drawn uniformly from the whole bank (with
      replacement; ``ensure_neg`` redraws any ``j == i``);
    * loss ``CE([pos, neg] / T, 0)`` (the ``ContrastiveHead``, T = 0.07);
    * then ``memory.update(i, f)`` (all-gathered; see
      :class:`~mmssl_ext.models.memories.FeatureMemory` for the momentum
      convention: ``momentum`` weights the new feature, 0.5 in NPID).

    Args:
        backbone (dict): backbone config.
        neck (dict): e.g. ``LinearNeck(in, 128, gap_dim=2)``.
        head (dict): ``ContrastiveHead`` config.
        memory (dict): ``FeatureMemory`` config; ``length`` must equal the
            training set length (checked before training by
            ``MemoryCheckHook``).
        neg_num (int): negatives per sample (65536). Defaults to 65536.
        ensure_neg (bool): redraw negatives equal to the positive.
        seed (int): seed of the negative sampling (with the rank and the
            persistent iteration counter ``num_iters``).
        pretrained, data_preprocessor, init_cfg: as BaseSelfSupervisor.

    Inputs: ``inputs[0]`` (one view); data samples must carry
    ``sample_idx`` (``PackInputs``).
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 memory: dict,
                 neg_num: int = 65536,
                 ensure_neg: bool = False,
                 seed: int = 0,
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
        if neg_num < 1:
            raise ValueError(f'neg_num={neg_num} must be >= 1')
        self.memory = build_memory(memory, FeatureMemory)
        self.neg_num = int(neg_num)
        self.ensure_neg = ensure_neg
        self.seed = int(seed)
        self.register_buffer('num_iters', torch.tensor(0, dtype=torch.long))
        if ensure_neg and self.memory.length < 2:
            raise ValueError('ensure_neg=True needs memory.length >= 2')

    def extract_feat(self, inputs, **kwargs):
        """Backbone features of ``inputs`` (a tensor or a list of views: the
        first view is used)."""
        if isinstance(inputs, (list, tuple)):
            inputs = inputs[0]
        return self.backbone(inputs)

    def _sample_negatives(self, idx: torch.Tensor) -> torch.Tensor:
        """(B, neg_num) uniform bank indices from a generator on the bank's
        device seeded with (``seed``, rank, ``num_iters``): different on
        every rank and iteration, and repeated exactly by a resumed run on
        the same kind of device. Drawn where the bank lives: on a GPU a
        CPU draw of B x 65,536 indices plus its host-to-device copy would
        cost more than the rest of the memory-bank work."""
        n = self.memory.length
        dev = self.memory.bank.device
        g = seeded_generator(self.seed, dist.get_rank(), self.num_iters,
                             device=dev)
        neg = torch.randint(0, n, (idx.numel(), self.neg_num), generator=g,
                            device=dev)
        if self.ensure_neg:
            idx_c = idx.to(dev).unsqueeze(1)
            bad = neg == idx_c
            while bad.any():
                neg[bad] = torch.randint(0, n, (int(bad.sum()), ),
                                         generator=g, device=dev)
                bad = neg == idx_c
        return neg.to(idx.device)

    def loss(self, inputs: List[torch.Tensor],
             data_samples: List[DataSample]) -> Dict[str, torch.Tensor]:
        feats = self.neck(self.extract_feat(inputs))[0]
        feats = F.normalize(feats, dim=1)
        idx = get_sample_idx(data_samples, device=feats.device)
        bank = self.memory.bank
        pos_feat = bank[idx.to(bank.device)].to(feats)
        neg_idx = self._sample_negatives(idx.to(bank.device))
        neg_feat = bank[neg_idx].to(feats)  # (B, neg_num, D)
        pos = (feats * pos_feat).sum(1, keepdim=True)
        neg = torch.bmm(neg_feat, feats.unsqueeze(2)).squeeze(2)
        loss = self.head.loss(pos, neg)
        self.memory.update(idx, feats.detach())
        self.num_iters += 1
        return dict(loss=loss)
