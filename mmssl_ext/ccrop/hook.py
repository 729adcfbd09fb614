"""ContrastiveCropHook: semantic-aware localisation of ContrastiveCrop boxes.

Schedule (authors' training loop, epochs counted from 1):

* epochs ``1 .. warmup_epochs`` use plain RandomResizedCrop (the box store is
  inactive, so ``ContrastiveCrop`` behaves exactly as RRC);
* from epoch ``warmup_epochs + 1`` on the store is active;
* after epoch ``e`` the boxes are recomputed when ``e >= warmup_epochs``,
  ``e % interval == 0`` and ``e`` is not the last epoch (for the released
  recipes, warm-up 100 / interval 100 / 500 epochs: after 100, 200, 300, 400).

Box refresh: the model (``eval()``) runs over the whole training set with
``pipeline`` (the test pipeline); the feature map ``F`` (C, h, w) of the last
stage gives the heatmap ``A = sum_c F_c``, min-max normalised per image to
[0, 1] and bilinearly upsampled to the input size (H, W); rows ``r`` with
``max_x A[y, x] > threshold`` and columns ``c`` with ``max_y A[y, x] >
threshold`` give ``box = (min r / H, min c / W, max r / H, max c / W)``.
Every rank computes its sampler share; the boxes are assembled in data-set
order with :func:`mmssl_ext.utils.extract.extract_features` (placed at their
``sample_idx`` rows, one all-reduce), so every rank holds the same table and
writes it in place into the data set's shared store, which the next epoch's
workers (persistent ones included) read.
"""
import time
from typing import List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.dataset import Compose, DefaultSampler, default_collate
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from torch.utils.data import DataLoader, Dataset

from .box_store import BOX_STATE_KEY as CKPT_KEY
from .box_store import find_box_dataset
from mmssl_ext.registry import HOOKS
from mmssl_ext.utils.extract import extract_features


def box_area(x: torch.Tensor) -> torch.Tensor:
    """Row-wise area of (N, 4) ``(y0, x0, y1, x1)`` boxes."""
    return (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])


def _intersection(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    h = torch.minimum(a[:, 2], b[:, 2]) - torch.maximum(a[:, 0], b[:, 0])
    w = torch.minimum(a[:, 3], b[:, 3]) - torch.maximum(a[:, 1], b[:, 1])
    return h.clamp(min=0) * w.clamp(min=0)


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise IoU of two (N, 4) ``(y0, x0, y1, x1)`` box tensors."""
    inter = _intersection(a, b)
    return inter / (box_area(a) + box_area(b) - inter).clamp(min=1e-12)


def box_cover(obj: torch.Tensor, box: torch.Tensor) -> torch.Tensor:
    """Row-wise fraction of the area of ``obj`` inside ``box``."""
    return _intersection(obj, box) / box_area(obj).clamp(min=1e-12)


def object_boxes(dataset) -> Optional[torch.Tensor]:
    """(N, 4) ``object_box`` of every sample when the data set provides one
    (monitoring only, e.g. the canvas digits), else None."""
    if len(dataset) == 0 or 'object_box' not in dataset.get_data_info(0):
        return None
    return torch.as_tensor(
        np.stack([dataset.get_data_info(i)['object_box']
                  for i in range(len(dataset))]), dtype=torch.float32)


def heatmap_boxes(feat: torch.Tensor, img_size: Tuple[int, int],
                  threshold: float = 0.1) -> torch.Tensor:
    """Boxes from last-stage feature maps (the authors' ``update_box``).

    Args:
        feat (Tensor): (N, C, h, w) feature maps.
        img_size (tuple): (H, W) of the network input.
        threshold (float): heatmap threshold in (0, 1).

    Returns:
        Tensor: (N, 4) float32 normalised ``(h0, w0, h1, w1)``. A constant
        heatmap (min-max undefined; the authors' code would divide by zero)
        gives the full image ``(0, 0, 1, 1)``.
    """
    n, _, h, w = feat.shape
    H, W = int(img_size[0]), int(img_size[1])
    a = feat.float().sum(1).reshape(n, -1)
    a = a - a.min(1, keepdim=True)[0]
    mx = a.max(1, keepdim=True)[0]
    a = torch.where(mx > 0, a / mx.clamp_min(torch.finfo(a.dtype).tiny),
                    torch.zeros_like(a))
    a = F.interpolate(
        a.view(n, 1, h, w), size=(H, W), mode='bilinear',
        align_corners=False)[:, 0]
    rows = a.amax(dim=2) > threshold  # (N, H)
    cols = a.amax(dim=1) > threshold  # (N, W)

    def first_last(mask):
        length = mask.shape[1]
        ar = torch.arange(length, device=mask.device)
        first = torch.where(mask, ar, length).amin(1)
        last = torch.where(mask, ar, -1).amax(1)
        return first, last

    r0, r1 = first_last(rows)
    c0, c1 = first_last(cols)
    boxes = torch.stack([r0 / H, c0 / W, r1 / H, c1 / W], 1).float()
    empty = ~(rows.any(1) & cols.any(1))
    boxes[empty] = boxes.new_tensor([0., 0., 1., 1.])
    return boxes


class _PipelineView(Dataset):
    """The same samples as ``dataset`` through another pipeline (the test
    pipeline), by ``get_data_info`` -> pipeline; ``sample_idx`` kept."""

    def __init__(self, dataset, pipeline):
        self.dataset = dataset
        self.pipeline = pipeline

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, idx):
        return self.pipeline(self.dataset.get_data_info(idx))


@HOOKS.register_module()
class ContrastiveCropHook(Hook):
    """Refresh ContrastiveCrop boxes from the encoder's heatmaps.

    Works with any algorithm whose ``extract_feat`` returns the backbone's
    stage outputs (MMPretrain's SimCLR, MoCo, BYOL, SimSiam and this
    package's algorithms): ``model.backbone`` is the query encoder of MoCo,
    the online encoder of BYOL and the single encoder of SimCLR / SimSiam,
    as in the authors' code. The training set must be wrapped in
    ``ContrastiveCropDataset`` and the train pipeline must use
    ``ContrastiveCrop`` in place of ``RandomResizedCrop``.

    Args:
        warmup_epochs (int): epochs of plain RandomResizedCrop before the
            boxes are used (and first refreshed). Defaults to 100.
        interval (int, optional): refresh when the finished epoch is a
            multiple of ``interval`` (and >= ``warmup_epochs``, and not the
            last). ``None``: never refresh (SimCCrop, fixed boxes). Defaults
            to 100.
        threshold (float): heatmap threshold in (0, 1). Defaults to 0.1.
        pipeline (list[dict]): test pipeline applied to each training sample
            (ending in ``PackInputs``). Defaults to ``[PackInputs]`` (images
            already in memory, native size, as the authors' small-data
            recipes); ImageNet uses ``LoadImageFromFile`` + ``Resize
            ((224, 224))``.
        encoder (str, optional): dotted path of the module that maps the
            preprocessed images to feature maps (e.g. ``'backbone'``,
            ``'target_net.module.0'`` for BYOL's target). ``None`` (default)
            calls the model's ``extract_feat``; tuples use their last item.
        batch_size (int, optional): extraction batch size; defaults to the
            train dataloader's.
        num_workers (int): extraction workers. Defaults to 0.
        progress (bool): show a progress bar on rank 0. Defaults to True.
    """

    def __init__(self,
                 warmup_epochs: int = 100,
                 interval: Optional[int] = 100,
                 threshold: float = 0.1,
                 pipeline: Optional[List[dict]] = None,
                 encoder: Optional[str] = None,
                 batch_size: Optional[int] = None,
                 num_workers: int = 0,
                 progress: bool = True):
        if not isinstance(warmup_epochs, int) or warmup_epochs < 0:
            raise ValueError(f'ContrastiveCropHook: warmup_epochs must be an '
                             f'int >= 0, got warmup_epochs={warmup_epochs!r}')
        if interval is not None and (not isinstance(interval, int)
                                     or interval < 1):
            raise ValueError(f'ContrastiveCropHook: interval must be an int '
                             f'>= 1 or None, got interval={interval!r}')
        if not isinstance(threshold, (int, float)) or not 0 < threshold < 1:
            raise ValueError(f'ContrastiveCropHook: threshold must be in '
                             f'(0, 1), got threshold={threshold!r}')
        if batch_size is not None and batch_size < 1:
            raise ValueError(f'ContrastiveCropHook: batch_size must be >= 1, '
                             f'got batch_size={batch_size!r}')
        self.warmup_epochs = warmup_epochs
        self.interval = interval
        self.threshold = float(threshold)
        self.pipeline_cfg = (list(pipeline) if pipeline is not None else
                             [dict(type='PackInputs')])
        self.encoder = encoder
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.progress = progress
        self._pending_state = None
        self.last_refresh_epoch = -1
        self.last_refresh_time = None

    # -- helpers -----------------------------------------------------------
    @staticmethod
    def _box_dataset(runner):
        return find_box_dataset(runner.train_dataloader.dataset)

    def _feature_maps(self, model, inputs: torch.Tensor) -> torch.Tensor:
        ori = model.module if is_model_wrapper(model) else model
        if self.encoder is None:
            out = ori.extract_feat(inputs)
        else:
            try:
                encoder = ori.get_submodule(self.encoder)
            except AttributeError as e:
                raise AttributeError(
                    f"ContrastiveCropHook: encoder='{self.encoder}' does not "
                    f'name a submodule of {type(ori).__name__} ({e})') from e
            out = encoder(inputs)
        if isinstance(out, (list, tuple)):
            out = out[-1]
        if out.dim() != 4:
            raise ValueError(
                'ContrastiveCropHook needs (N, C, h, w) feature maps from the '
                f'encoder, got shape {tuple(out.shape)}; set `encoder` to a '
                'convolutional module')
        return out

    def compute_boxes(self, model, box_dataset,
                      batch_size: int = 64) -> torch.Tensor:
        """Run the refresh (every rank) and return the (N, 4) boxes in
        data-set order, identical on every rank. Does not write them."""
        view = _PipelineView(box_dataset.dataset, Compose(self.pipeline_cfg))
        loader = DataLoader(
            view,
            batch_size=batch_size,
            sampler=DefaultSampler(view, shuffle=False, seed=0),
            num_workers=self.num_workers,
            collate_fn=default_collate,
            drop_last=False)

        def fn(m, inputs):
            return heatmap_boxes(
                self._feature_maps(m, inputs), inputs.shape[-2:],
                self.threshold)

        boxes = extract_features(
            model, loader, feature=fn, progress=self.progress)
        return boxes.float().cpu().clamp_(0., 1.)

    def refresh(self, runner) -> torch.Tensor:
        """Recompute the boxes and write them into the shared store."""
        box_ds = self._box_dataset(runner)
        bs = self.batch_size or runner.train_dataloader.batch_size or 64
        t0 = time.perf_counter()
        boxes = self.compute_boxes(runner.model, box_ds, bs)
        prev = box_ds.store.boxes.clone()
        box_ds.store.update(boxes)
        self.last_refresh_time = time.perf_counter() - t0
        self.last_refresh_epoch = runner.epoch + 1
        area = float(box_area(boxes).mean())
        # how far the boxes moved since the previous boxes (the full image
        # before the first refresh): mean IoU and mean |coordinate change|
        scalars = dict(
            ccrop_refresh_time=self.last_refresh_time, ccrop_box_area=area,
            ccrop_box_iou_prev=box_iou(prev, boxes).mean(),
            ccrop_box_shift=(prev - boxes).abs().mean())
        obj = object_boxes(box_ds)
        if obj is not None:
            # data sets that know where the object is (the canvas digits):
            # IoU of the boxes with it, and how much of it they cover
            scalars.update(ccrop_object_iou=box_iou(boxes, obj).mean(),
                           ccrop_object_cover=box_cover(obj, boxes).mean())
        for key, value in scalars.items():
            runner.message_hub.update_scalar(f'train/{key}', float(value))
        runner.logger.info(
            f'ContrastiveCrop: boxes refreshed after epoch '
            f'{self.last_refresh_epoch} in {self.last_refresh_time:.2f}s '
            f'({len(boxes)} images, mean box area {area:.3f})')
        return boxes

    # -- hook points -------------------------------------------------------
    def before_train(self, runner) -> None:
        if not hasattr(runner.train_loop, 'max_epochs'):
            raise TypeError(
                'ContrastiveCropHook works with an epoch-based train loop '
                "(train_cfg type 'EpochBasedTrainLoop')")
        box_ds = self._box_dataset(runner)
        if self._pending_state is not None:
            self._load_state(box_ds, self._pending_state)
            self._pending_state = None

    def _load_state(self, box_ds, state) -> None:
        # the memory contract: one row per sample, a mismatch raises
        box_ds.store.check_length(
            len(state['boxes']), key="the checkpoint's ContrastiveCrop "
            f"boxes ('{CKPT_KEY}.boxes')")
        box_ds.store.load_state_dict(state)
        self.last_refresh_epoch = int(state.get('last_refresh_epoch', -1))

    def before_train_epoch(self, runner) -> None:
        # epoch index is 0-based: epoch e+1 uses the boxes iff e >= warmup
        self._box_dataset(runner).store.set_active(
            runner.epoch >= self.warmup_epochs)

    def after_train_epoch(self, runner) -> None:
        if self.interval is None:
            return
        e = runner.epoch + 1  # finished epoch, 1-based
        if (e >= self.warmup_epochs and e % self.interval == 0
                and e != runner.max_epochs):
            self.refresh(runner)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        state = self._box_dataset(runner).store.state_dict()
        state['last_refresh_epoch'] = self.last_refresh_epoch
        checkpoint[CKPT_KEY] = state

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        # applied in before_train, once the training set surely exists
        if CKPT_KEY in checkpoint:
            self._pending_state = checkpoint[CKPT_KEY]
