"""Per-sample crop boxes that DataLoader workers read (ContrastiveCrop).

Design: the boxes belong to the *data set*, so they live in a data-set
wrapper, :class:`ContrastiveCropDataset`, which owns a
:class:`SharedBoxStore`. The store is two torch tensors in shared memory,
created when the data set is built (i.e. before any DataLoader worker forks)
and only ever updated **in place**:

* ``boxes`` (N, 4) float32, normalised ``(h0, w0, h1, w1)``, initialised to
  the full image ``(0, 0, 1, 1)``;
* ``active`` (1,) uint8, whether ContrastiveCrop uses the boxes yet.

Forked workers (``persistent_workers=True`` included) map the same pages, and
under the ``spawn`` start method torch's multiprocessing pickler passes
shared tensors by handle, so an in-place write in the main process is seen by
every worker at its next ``__getitem__``. The wrapper injects the sample's
box into the results dict (key ``'ccrop_box'``, looked up by the sample's
``sample_idx``) before the inner data set's pipeline runs; the transform
:class:`~mmssl_ext.datasets.transforms.ContrastiveCrop` reads it.
Checkpointing is done by ``ContrastiveCropHook`` through
:meth:`SharedBoxStore.state_dict` / :meth:`SharedBoxStore.load_state_dict`.
"""
import copy
from typing import Optional, Sequence

import torch

from mmssl_ext.registry import DATASETS
from .transform import CCROP_BOX_KEY, check_box

FULL_BOX = (0., 0., 1., 1.)
#: Key of the box state in checkpoints (``ContrastiveCropHook``) and in the
#: box files of ``tools/model_converters/extract_backbone_weights.py
#: --boxes-out``.
BOX_STATE_KEY = 'contrastive_crop'


def load_box_file(path: str) -> dict:
    """The box state (``{'boxes': (N, 4) tensor, 'active': bool, ...}``)
    stored in ``path``: a checkpoint of a run with ``ContrastiveCropHook``
    or a box file written by ``extract_backbone_weights.py --boxes-out``
    (``{'contrastive_crop': state, 'meta': ...}``). Loaded with PyTorch's
    safe loader."""
    import os.path as osp
    if not osp.isfile(path):
        raise FileNotFoundError(f'ContrastiveCrop boxes_file {path} not '
                                'found')
    obj = torch.load(path, map_location='cpu')
    state = obj.get(BOX_STATE_KEY) if isinstance(obj, dict) else None
    if not isinstance(state, dict) or not isinstance(
            state.get('boxes'), torch.Tensor):
        raise ValueError(
            f'{path} holds no ContrastiveCrop boxes: expected a '
            f"'{BOX_STATE_KEY}' entry with 'boxes' (N, 4), as in checkpoints "
            'of ContrastiveCropHook or the files of tools/model_converters/'
            'extract_backbone_weights.py --boxes-out')
    return state


class SharedBoxStore:
    """Shared-memory table of normalised boxes, one per sample.

    Args:
        length (int): number of samples N.
        init_box (sequence): initial box of every sample. Defaults to the
            full image ``(0, 0, 1, 1)``.
        active (bool): initial value of the ``active`` flag.
    """

    def __init__(self,
                 length: int,
                 init_box: Sequence[float] = FULL_BOX,
                 active: bool = False):
        if int(length) < 1:
            raise ValueError(f'SharedBoxStore: length must be >= 1, got '
                             f'{length}')
        init = torch.tensor(check_box(init_box, 'init_box'),
                            dtype=torch.float32)
        self.boxes = init.repeat(int(length), 1).share_memory_()
        self._active = torch.tensor([int(bool(active))],
                                    dtype=torch.uint8).share_memory_()

    def __len__(self) -> int:
        return self.boxes.shape[0]

    def check_length(self, n: int, key: str) -> None:
        """The memory contract (one row per sample): raise a ValueError
        naming ``key`` unless ``n`` rows (e.g. of a checkpoint) fit the
        data set's ``len(self)``."""
        if int(n) != len(self):
            raise ValueError(
                f'{key} has {n} rows but the training data set has '
                f'{len(self)} samples (one box per sample, in data-set '
                'order): use the training set the boxes were written for')

    @property
    def active(self) -> bool:
        return bool(self._active[0])

    def set_active(self, flag: bool) -> None:
        self._active.fill_(int(bool(flag)))

    def get(self, idx: int):
        """The box of sample ``idx`` as a float32 NumPy array (a copy)."""
        return self.boxes[int(idx)].numpy().copy()

    def update(self, boxes: torch.Tensor) -> None:
        """Overwrite every box **in place** (shape (N, 4))."""
        boxes = torch.as_tensor(boxes, dtype=torch.float32).detach().cpu()
        if boxes.shape != self.boxes.shape:
            raise ValueError(f'SharedBoxStore.update: expected boxes of shape '
                             f'{tuple(self.boxes.shape)}, got '
                             f'{tuple(boxes.shape)}')
        if not torch.isfinite(boxes).all() or (boxes < 0).any() or \
                (boxes > 1).any() or (boxes[:, 2] < boxes[:, 0]).any() or \
                (boxes[:, 3] < boxes[:, 1]).any():
            raise ValueError('SharedBoxStore.update: boxes must be '
                             'normalised (h0, w0, h1, w1) with 0 <= h0 <= h1 '
                             '<= 1 and 0 <= w0 <= w1 <= 1')
        self.boxes.copy_(boxes)

    def state_dict(self) -> dict:
        return dict(boxes=self.boxes.clone(), active=self.active)

    def load_state_dict(self, state: dict) -> None:
        self.update(state['boxes'])
        self.set_active(bool(state.get('active', self.active)))


@DATASETS.register_module()
class ContrastiveCropDataset:
    """Wrap a data set so its pipeline sees the sample's ContrastiveCrop box.

    Use it around the training set; the inner data set keeps its own
    pipeline (which contains ``ContrastiveCrop`` where ``RandomResizedCrop``
    would be)::

        train_dataloader = dict(dataset=dict(
            type='ContrastiveCropDataset',
            dataset=dict(type='CIFAR10', ..., pipeline=train_pipeline)))

    ``__getitem__(idx)`` = ``inner.get_data_info(idx)`` (+ ``'ccrop_box'``
    when the store is active) -> ``inner.pipeline``. ``ContrastiveCropHook``
    finds the wrapper through ``runner.train_dataloader.dataset`` and updates
    its store.

    Args:
        dataset (dict | BaseDataset): the inner data set (an MMEngine
            ``BaseDataset``: it needs ``get_data_info`` and ``pipeline``).
        init_box (sequence): initial box of every sample, normalised
            ``(h0, w0, h1, w1)``. Defaults to the full image; SimCCrop uses
            ``(0.25, 0.25, 0.75, 0.75)`` with ``active=True`` and no hook
            refresh.
        active (bool): use the boxes from the first epoch on. Defaults to
            False (``ContrastiveCropHook`` switches it after the warm-up).
        lazy_init (bool): must be False: the store is sized at
            construction (before any DataLoader worker forks), so the inner
            data set is always fully initialised; True raises.
        boxes_file (str, optional): start from the boxes saved in this file
            (one per sample, in data-set order) instead of ``init_box``: a
            checkpoint of a run with ``ContrastiveCropHook``, or the boxes of
            a ContrastiveCrop release checkpoint carried over by
            ``tools/model_converters/extract_backbone_weights.py
            --boxes-out``. Their number must equal the data set's length.
    """

    def __init__(self,
                 dataset,
                 init_box: Sequence[float] = FULL_BOX,
                 active: bool = False,
                 lazy_init: bool = False,
                 boxes_file: Optional[str] = None):
        if lazy_init:
            raise ValueError(
                'ContrastiveCropDataset: lazy_init=True is not supported: '
                'the shared box store is sized from the inner data set at '
                'construction, before DataLoader workers fork')
        if isinstance(dataset, dict):
            dataset = DATASETS.build(dataset)
        if not (hasattr(dataset, 'get_data_info')
                and hasattr(dataset, 'pipeline')):
            raise TypeError(
                'ContrastiveCropDataset: `dataset` must be an MMEngine '
                'BaseDataset with get_data_info() and a pipeline, got '
                f'{type(dataset).__name__}')
        self.dataset = dataset
        if hasattr(dataset, 'full_init'):
            dataset.full_init()
        if boxes_file is not None and tuple(init_box) != FULL_BOX:
            raise ValueError('ContrastiveCropDataset: give init_box or '
                             'boxes_file, not both')
        self.store = SharedBoxStore(len(dataset), init_box, active)
        if boxes_file is not None:
            boxes = load_box_file(boxes_file)['boxes']
            self.store.check_length(
                len(boxes), f'ContrastiveCropDataset: boxes_file {boxes_file}')
            self.store.update(boxes)
        self._metainfo = copy.deepcopy(getattr(dataset, 'metainfo', {}))

    @property
    def metainfo(self) -> dict:
        return copy.deepcopy(self._metainfo)

    def full_init(self) -> None:
        """Nothing to do: the inner data set is initialised in __init__."""

    def get_data_info(self, idx: int) -> dict:
        return self.dataset.get_data_info(idx)

    def get_gt_labels(self):
        """The wrapped data set's labels (same indices), e.g. for the
        diagnostics; TypeError when it has none."""
        getter = getattr(self.dataset, 'get_gt_labels', None)
        if getter is None:
            raise TypeError(f'{type(self.dataset).__name__} has no labels')
        return getter()

    def __len__(self) -> int:
        return len(self.dataset)

    def prepare_data(self, idx: int) -> Optional[dict]:
        data = self.dataset.get_data_info(idx)
        if self.store.active:
            data[CCROP_BOX_KEY] = self.store.get(data.get('sample_idx', idx))
        return self.dataset.pipeline(data)

    def __getitem__(self, idx: int) -> dict:
        data = self.prepare_data(idx)
        if data is None:
            raise RuntimeError(f'ContrastiveCropDataset: the pipeline '
                               f'returned None for sample {idx}')
        return data

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(len={len(self)}, '
                f'active={self.store.active}, dataset={self.dataset!r})')


def find_box_dataset(dataset) -> ContrastiveCropDataset:
    """Return the :class:`ContrastiveCropDataset` in ``dataset`` or in its
    chain of ``.dataset`` wrappers; raise a clear error if there is none."""
    d = dataset
    for _ in range(16):  # a bounded walk down the wrappers
        if isinstance(d, ContrastiveCropDataset):
            return d
        d = getattr(d, 'dataset', None)
    raise TypeError(
        'ContrastiveCrop needs train_dataloader.dataset to be wrapped in '
        "dict(type='ContrastiveCropDataset', dataset=...), got "
        f'{type(dataset).__name__}')
