"""Data sets whose images are generated or decoded into memory up front
(the embedded digits, synthetic test images)."""
from typing import List, Optional

import numpy as np
import torch
import torch.nn.functional as F
from mmpretrain.datasets import BaseDataset

from mmssl_ext.registry import DATASETS


def resize_to_rgb(imgs: np.ndarray, size: int) -> np.ndarray:
    """(N, H, W) or (N, H, W, 3) uint8 -> (N, size, size, 3) uint8, bilinear."""
    x = torch.from_numpy(imgs).float()
    if x.dim() == 3:
        x = x.unsqueeze(-1).expand(-1, -1, -1, 3)
    x = x.permute(0, 3, 1, 2)
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode='bilinear',
                          align_corners=False, antialias=True)
    return x.round().clamp(0, 255).byte().permute(0, 2, 3, 1).contiguous(
    ).numpy()


class InMemoryImageDataset(BaseDataset):
    """Base of data sets that hold uint8 images in memory.

    Subclasses implement :meth:`load_arrays`. Each sample dict carries
    ``img`` (H, W, 3 uint8, the layout ``LoadImageFromFile`` produces),
    ``img_shape``, ``ori_shape`` and ``gt_label``; mmengine adds
    ``sample_idx``, which ``PackInputs`` keeps in the data sample.
    """

    def __init__(self, img_size: int = 32, **kwargs):
        if img_size < 1:
            raise ValueError(f'img_size must be >= 1, got {img_size}')
        self.img_size = img_size
        kwargs.setdefault('ann_file', '')
        super().__init__(**kwargs)

    def load_arrays(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def load_data_list(self) -> List[dict]:
        imgs, labels = self.load_arrays()
        imgs = resize_to_rgb(imgs, self.img_size)
        shape = imgs.shape[1:3]
        return [
            dict(img=imgs[i], img_shape=shape, ori_shape=shape,
                 gt_label=int(labels[i])) for i in range(len(labels))
        ]


@DATASETS.register_module()
class SyntheticImageDataset(InMemoryImageDataset):
    """Tiny random images for tests: ``num_classes`` blob prototypes plus
    noise, so that class structure exists but nothing is downloaded.

    Args:
        num_samples (int): data set length.
        num_classes (int): number of classes (labels ``i % num_classes``).
        img_size (int): image side.
        seed (int): seed of the per-sample noise (same seed, same images).
        proto_seed (int): seed of the class prototypes; keep it equal between
            a "train" and a "test" set (different ``seed``) so that both
            share the class structure.
    """
    METAINFO = {'classes': None}

    def __init__(self,
                 num_samples: int = 32,
                 num_classes: int = 4,
                 img_size: int = 32,
                 seed: int = 0,
                 proto_seed: int = 0,
                 **kwargs):
        if num_samples < 1 or num_classes < 1:
            raise ValueError('num_samples and num_classes must be >= 1')
        self.num_samples, self.num_classes = num_samples, num_classes
        self.seed, self.proto_seed = seed, proto_seed
        kwargs.setdefault('metainfo', dict(
            classes=tuple(f'c{i}' for i in range(num_classes))))
        super().__init__(img_size=img_size, **kwargs)

    def load_arrays(self):
        s = self.img_size
        protos = np.random.RandomState(self.proto_seed).randint(
            0, 256, size=(self.num_classes, s, s, 3))
        g = np.random.RandomState(self.seed + 1000003)
        labels = np.arange(self.num_samples) % self.num_classes
        noise = g.randint(-40, 41, size=(self.num_samples, s, s, 3))
        imgs = np.clip(protos[labels] + noise, 0, 255).astype(np.uint8)
        return imgs, labels
