"""The oracle of the composition equivalence tests: the method classes as
they were written before they became compositions of a framework and
branches (commit 79958e0: ``InterCLRMoCo``, ``NPIDCLD``, ``MoCoCLD`` and the
four ``BSIM*`` classes), docstrings dropped, not registered. Only the code
of the classes is frozen; the parts they use (RingMoCo, the memories, the
samplers, the group head, the mixture term, the two-view interface) are the
package's, and are themselves checked against hand computations and against
MMPretrain's own ``loss()``.
"""
from typing import List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine import dist
from mmengine.dist import all_gather, get_rank
from mmengine.model import ExponentialMovingAverage
from mmpretrain.models import BaseSelfSupervisor
from mmpretrain.models.selfsup import BYOL, MoCo, SimCLR, SimSiam

from mmssl_ext.models.algorithms import RingMoCo, siamese_step
from mmssl_ext.models.bsim.joint_loss import (joint_contrastive_loss,
                                              joint_distance_loss)
from mmssl_ext.models.interclr.neg_sampling import (build_neg_sampler,
                                                    sample_positives)
from mmssl_ext.models.memories import (ClusterMemory, FeatureMemory,
                                       build_memory)
from mmssl_ext.registry import MODELS
from mmssl_ext.utils.dist import get_gt_labels, get_sample_idx
from mmssl_ext.utils.seeding import seeded_generator


def _build(cfg):
    if isinstance(cfg, nn.Module):
        return cfg
    cfg = dict(cfg)
    cfg.setdefault('_scope_', 'mmssl_ext')
    return MODELS.build(cfg)


class FrozenInterCLRMoCo(RingMoCo):

    def __init__(self, backbone, neck, head, memory, inter_head=None,
                 queue_len=65536, feat_dim=128, momentum=0.001,
                 neg_num=16384, neg_sampling='semihard',
                 semihard_neg_pool_num=128000, semieasy_neg_pool_num=128000,
                 intra_loss_weight=0.75, inter_loss_weight=0.25,
                 share_neck=True, inter_neck=None, knn_backend='torch',
                 sampling_seed=None, pretrained=None, data_preprocessor=None,
                 init_cfg=None):
        super().__init__(backbone=backbone, neck=neck, head=head,
                         queue_len=queue_len, feat_dim=feat_dim,
                         momentum=momentum, pretrained=pretrained,
                         data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        if inter_head is None:
            inter_head = dict(
                type='MarginContrastiveHead',
                loss=dict(type='CrossEntropyLoss'),
                temperature=getattr(self.head, 'temperature', 0.2),
                cos_margin=-0.5)
        self.inter_head = _build(inter_head)
        self.share_neck = bool(share_neck)
        if not self.share_neck:
            self.inter_neck = _build(inter_neck if inter_neck is not None
                                     else neck)
            self.inter_neck_k = ExponentialMovingAverage(
                self.inter_neck, momentum)
        self.memory = build_memory(memory, ClusterMemory, feat_dim=feat_dim,
                                   init='data')
        self.neg_sampler = build_neg_sampler(
            neg_sampling, neg_num, semihard_neg_pool_num,
            semieasy_neg_pool_num, knn_backend=knn_backend)
        self.intra_loss_weight = float(intra_loss_weight)
        self.inter_loss_weight = float(inter_loss_weight)
        if sampling_seed is None:
            sampling_seed = int(torch.randint(0, 2**31 - 1, (1, )))
        self.register_buffer('sampling_seed',
                             torch.tensor(int(sampling_seed)))
        self.register_buffer('sampling_step', torch.tensor(0))

    @torch.no_grad()
    def momentum_update(self):
        super().momentum_update()
        if not self.share_neck:
            self.inter_neck_k.update_parameters(self.inter_neck)

    def inter_logits(self, q, idx, generator=None):
        mem = self.memory
        bank, label_bank = mem.bank, mem.label_bank
        labels = label_bank[idx.to(label_bank.device)]
        pos_idx = sample_positives(label_bank, labels, generator,
                                   mem.num_clusters)
        neg_idx = self.neg_sampler(
            q.detach(), bank, label_bank, labels, generator=generator)
        pos = (q * bank[pos_idx].to(q)).sum(1, keepdim=True)
        neg_feat = bank[neg_idx.flatten()].view(
            neg_idx.size(0), neg_idx.size(1), -1).to(q)
        neg = torch.bmm(neg_feat, q.unsqueeze(2)).squeeze(2)
        return pos, neg, pos_idx, neg_idx

    def loss(self, inputs, data_samples, **kwargs):
        x_k, (x_q, ) = self.split_views(inputs)
        idx = get_sample_idx(data_samples, device=x_q.device)
        q_b = self.backbone(x_q)
        q = F.normalize(self.neck(q_b)[0], dim=1)
        q_inter = q if self.share_neck else F.normalize(
            self.inter_neck(q_b)[0], dim=1)
        self.momentum_update()
        with torch.no_grad():
            k_b, unshuffle = self.momentum_backbone(x_k)
            k = F.normalize(unshuffle(self.encoder_k.module[1](k_b)[0]),
                            dim=1)
            k_inter = k if self.share_neck else F.normalize(
                unshuffle(self.inter_neck_k.module(k_b)[0]), dim=1)
        loss_intra = self.contrast([q], k)
        g = seeded_generator(self.sampling_seed,
                             1009 * int(self.sampling_step) + dist.get_rank(),
                             device=self.memory.bank.device)
        pos, neg, _, _ = self.inter_logits(q_inter, idx, g)
        loss_inter = self.inter_head.loss(pos, neg)
        widened = getattr(self.neg_sampler, 'last_widened', 0)
        losses = dict(
            loss_intra=self.intra_loss_weight * loss_intra,
            loss_inter=self.inter_loss_weight * loss_inter,
            neg_widened=q.new_tensor(widened / q.size(0)))
        self.queue.enqueue(k)
        losses.update(self.memory.update(idx, k_inter))
        self.sampling_step += 1
        return losses


class FrozenNPIDCLD(BaseSelfSupervisor):

    def __init__(self, backbone, neck, memory, group_head=None,
                 temperature=0.1, pretrained=None, data_preprocessor=None,
                 init_cfg=None):
        super().__init__(backbone=backbone, neck=neck, head=None,
                         pretrained=pretrained,
                         data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        self.temperature = float(temperature)
        self.memory = build_memory(memory, FeatureMemory)
        self.group_head = (MODELS.build(group_head) if isinstance(
            group_head, dict) else group_head)

    def loss(self, inputs, data_samples, **kwargs):
        views = list(inputs)
        idx = get_sample_idx(data_samples, device=views[0].device)
        inst, group = [], []
        for x in views:
            out = self.neck(self.backbone(x))
            inst.append(F.normalize(out[0], dim=1))
            if self.group_head is not None:
                group.append(out[1])
        bank = self.memory.bank.clone().to(inst[0].dtype)
        loss_inst = sum(
            F.cross_entropy(f.mm(bank.t()) / self.temperature, idx)
            for f in inst) / len(inst)
        losses = dict(loss_inst=loss_inst)
        if self.group_head is not None:
            losses.update(self.group_head.loss(
                group[0], group[1], get_gt_labels(data_samples)))
        for f in reversed(inst):
            self.memory.update(idx, f)
        return losses


class FrozenMoCoCLD(RingMoCo):

    def __init__(self, backbone, neck, head, group_head=None, key_view=2,
                 feat_dim=128, **kwargs):
        super().__init__(backbone=backbone, neck=neck, head=head,
                         key_view=key_view, num_views=3, feat_dim=feat_dim,
                         **kwargs)
        self.group_head = (MODELS.build(group_head) if isinstance(
            group_head, dict) else group_head)

    def loss(self, inputs, data_samples, **kwargs):
        x_k, x_qs = self.split_views(inputs)
        outs = [self.neck(self.backbone(x)) for x in x_qs]
        k = self.momentum_keys(x_k)
        losses = dict(loss_inst=self.contrast(
            [F.normalize(out[0], dim=1) for out in outs], k))
        if self.group_head is not None:
            losses.update(self.group_head.loss(
                outs[0][1], outs[1][1], get_gt_labels(data_samples)))
        self.queue.enqueue(k)
        return losses


class _FrozenBSIM:

    def __init__(self, *args, mixture: Optional[dict] = None, **kwargs):
        super().__init__(*args, **kwargs)
        cfg = dict(type='MixtureTerm', _scope_='mmssl_ext')
        cfg.update(mixture or {})
        self.mixture = MODELS.build(cfg)

    def encode(self, x):
        return self.neck(self.backbone(x))[0]

    def loss(self, inputs, data_samples, **kwargs):
        step = siamese_step(self, inputs)
        loss_bsim, params = self.mixture(inputs, self.encode,
                                         self.term(step, inputs))
        step.commit()
        dev = loss_bsim.device
        return dict(
            loss_base=step.loss,
            loss_bsim=loss_bsim,
            bsim_lambda=torch.full((), params.lam, device=dev),
            bsim_mixup=torch.full((), float(params.mode == 'mixup'),
                                  device=dev))


def _targets(step, mixture):
    return {1 - v: step.target(1 - v) for v in mixture.view_ids}


class FrozenBSIMSimCLR(_FrozenBSIM, SimCLR):

    def term(self, step, views: List[torch.Tensor]):
        keys = torch.stack([step.targets[0], step.targets[1]], 1)
        n = keys.size(0)
        all_keys = torch.cat(all_gather(keys), dim=0)
        negatives = all_keys.flatten(0, 1)
        offset = get_rank() * n
        rows = torch.arange(n, device=keys.device)

        def term(v, z_mix, src_a, src_b, lam):
            exclude = torch.zeros(
                n, all_keys.size(0), dtype=torch.bool, device=keys.device)
            exclude[rows, offset + src_a] = True
            exclude[rows, offset + src_b] = True
            target = keys[:, 1 - v]
            return joint_contrastive_loss(
                F.normalize(z_mix, dim=1), target[src_a], target[src_b],
                negatives, lam, neg_mask=exclude.repeat_interleave(2, dim=1),
                criterion=self.head.loss)

        return term


class FrozenBSIMMoCo(_FrozenBSIM, MoCo):

    def term(self, step, views):
        targets = _targets(step, self.mixture)

        def term(v, z_mix, src_a, src_b, lam):
            target = targets[1 - v]
            return joint_contrastive_loss(
                F.normalize(z_mix, dim=1), target[src_a], target[src_b],
                step.negatives, lam, criterion=self.head.loss)

        return term


class _FrozenLatent(_FrozenBSIM):

    def _distance(self, pred, target):
        return 2.0 * self.head.loss_module(pred, target)

    def term(self, step, views):
        targets = _targets(step, self.mixture)

        def term(v, z_mix, src_a, src_b, lam):
            target = targets[1 - v]
            return joint_distance_loss(
                self.head.predictor([z_mix])[0], target[src_a],
                target[src_b], lam, distance=self._distance)

        return term


class FrozenBSIMBYOL(_FrozenLatent, BYOL):
    pass


class FrozenBSIMSimSiam(_FrozenLatent, SimSiam):
    pass
