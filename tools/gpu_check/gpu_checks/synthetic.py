"""An ImageNet stand-in for throughput runs: it reports the real training
set length (memory banks check it) and serves, by index, already packed
views cut from a small pool of random images, so that the measured step is
the model's and no CPU augmentation or disk is involved."""
import torch
from mmpretrain.structures import DataSample

from mmssl_ext.registry import DATASETS


@DATASETS.register_module(force=True)
class GpuCheckSyntheticImages:
    """``length`` samples of ``num_views`` uint8 (3, S, S) views.

    The pipeline is built in: ``get_data_info(i)`` -> ``pipeline(info)``
    returns ``dict(inputs=..., data_samples=DataSample(sample_idx=i))``
    (``inputs`` is a list of views, or one tensor when ``multi_view`` is
    False, as ``PackInputs`` produces without ``MultiView``). It has the
    ``get_data_info`` / ``pipeline`` / ``full_init`` surface of an MMEngine
    data set, so ``ContrastiveCropDataset`` can wrap it.

    Args:
        length (int): reported data set length (1,281,167 for ImageNet).
        num_views (int): views per sample.
        img_size (int): side S of the views.
        multi_view (bool): return a list of views (``MultiView``).
        pool (int): number of distinct random images served.
        seed (int): seed of the pool.
    """
    METAINFO = dict(classes=None)

    def __init__(self, length: int, num_views: int = 2, img_size: int = 224,
                 multi_view: bool = True, pool: int = 16, seed: int = 0):
        if length < 1 or num_views < 1 or img_size < 1 or pool < 1:
            raise ValueError('length, num_views, img_size and pool must be '
                             '>= 1')
        self.length, self.num_views = int(length), int(num_views)
        self.multi_view = bool(multi_view)
        g = torch.Generator().manual_seed(int(seed))
        self._pool = torch.randint(0, 256, (pool, 3, img_size, img_size),
                                   dtype=torch.uint8, generator=g)
        self.pipeline = self._pack

    @property
    def metainfo(self) -> dict:
        return dict(self.METAINFO)

    def full_init(self) -> None:
        pass

    def __len__(self) -> int:
        return self.length

    def get_data_info(self, idx: int) -> dict:
        return dict(sample_idx=int(idx))

    def _pack(self, info: dict) -> dict:
        i = info['sample_idx']
        p = self._pool.size(0)
        views = [self._pool[(i * self.num_views + v) % p]
                 for v in range(self.num_views)]
        return dict(inputs=views if self.multi_view else views[0],
                    data_samples=DataSample(metainfo=dict(sample_idx=i)))

    def __getitem__(self, idx: int) -> dict:
        return self.pipeline(self.get_data_info(idx))
