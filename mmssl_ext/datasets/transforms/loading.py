"""Image loading that survives broken files.

:class:`SafeLoadImageFromFile` is a drop-in replacement of MMCV's
``LoadImageFromFile`` (the one MMPretrain registers) for data sets that may
hold unreadable files: missing, empty (0 bytes), truncated or otherwise
undecodable images either

* ``on_error='skip'`` (default): are logged once per file (a WARNING in
  the run's log, shared by all data-loader workers) and the transform
  returns ``None``, which makes mmengine's ``BaseDataset.__getitem__``
  fetch another, random sample in its place (``max_refetch`` times at
  most, then mmengine stops with "Cannot find valid image"); or
* ``on_error='raise'``: stop training with :class:`ImageLoadError` whose
  message names the file and the reason. Raised in a data-loader worker,
  PyTorch re-raises it in the main process as the same type, with the
  message (file name included) on the last line.

Grayscale, CMYK, palette and alpha images are converted to 3-channel
images by the decoder (``color_type='color'``: OpenCV and Pillow both
convert, see ``mmcv.imfrombytes``); as a last guard, any 2-D or 4-channel
result is turned into H x W x 3 (BGR, uint8, as ``LoadImageFromFile``)
so that the rest of the pipeline always sees three channels.

Truncation is detected by the decoder: Pillow raises ``OSError: image file
is truncated`` and OpenCV >= 5 returns ``None`` (OpenCV 4.x decoded a
truncated JPEG with a grey bottom and only printed "Premature end of JPEG
file": with it, use ``imdecode_backend='pillow'``).

Notes:
    * A skipped sample's place is taken by a random other sample that
      carries its own ``sample_idx``, so memory banks stay consistent (the
      bad sample's row is simply never updated).
    * Test/validation data sets (``test_mode=True``) cannot skip
      (mmengine raises "Test time pipline should not get `None`"):
      use ``on_error='raise'`` there.
"""
import logging
import zlib
from typing import Optional

import mmcv
import numpy as np
import torch
from mmcv.transforms import LoadImageFromFile
from mmengine import fileio
from mmengine.logging import print_log

from mmssl_ext.registry import TRANSFORMS

_ON_ERROR = ('skip', 'raise')
_WARN = ('once', 'always', 'never')


class ImageLoadError(RuntimeError):
    """An image file could not be read; the message names the file."""


class _SharedOnceFlags:
    """Per-key "already reported" flags shared by the data-loader workers.

    A byte table in shared memory (created in the main process, before the
    workers fork / are spawned) indexed by a CRC32 of the key. A hash
    collision can only suppress a warning (never add one); with 2**20 slots
    and 100 bad files the chance of any collision is about 0.5%.
    """

    def __init__(self, size: int = 1 << 20):
        self.size = size
        self.flags = torch.zeros(size, dtype=torch.uint8).share_memory_()

    def first(self, key: str) -> bool:
        slot = zlib.crc32(key.encode('utf-8', 'surrogateescape')) % self.size
        if int(self.flags[slot]):
            return False
        self.flags[slot] = 1
        return True


def to_three_channels(img: np.ndarray) -> np.ndarray:
    """H x W (gray), H x W x 1, H x W x 4 (BGRA) -> H x W x 3."""
    if img.ndim == 2:
        img = img[:, :, None]
    if img.ndim != 3 or img.shape[2] not in (1, 3, 4):
        raise ValueError(f'unsupported image shape {img.shape} (channels '
                         'must be 1, 3 or 4)')
    if img.shape[2] == 1:
        return np.repeat(img, 3, axis=2)
    return img if img.shape[2] == 3 else np.ascontiguousarray(img[:, :, :3])


@TRANSFORMS.register_module()
class SafeLoadImageFromFile(LoadImageFromFile):
    """``LoadImageFromFile`` that skips (or clearly reports) broken files
    and always returns 3-channel images (see the module docstring).

    Args:
        on_error (str): ``'skip'`` (log, return ``None`` so that the data
            set refetches another sample) or ``'raise'``
            (:class:`ImageLoadError` naming the file). Defaults to
            ``'skip'``.
        warn (str): with ``on_error='skip'``: ``'once'`` (one WARNING per
            file for the whole run, shared by all workers), ``'always'``
            (every time the file is met) or ``'never'``. Defaults to
            ``'once'``.
        **kwargs: the arguments of ``LoadImageFromFile`` (``to_float32``,
            ``color_type``, ``imdecode_backend``, ``backend_args``, ...).
            ``ignore_empty`` is not accepted (``on_error`` replaces it).
    """

    def __init__(self,
                 on_error: str = 'skip',
                 warn: str = 'once',
                 **kwargs) -> None:
        if on_error not in _ON_ERROR:
            raise ValueError(f'on_error={on_error!r} must be one of '
                             f'{_ON_ERROR}')
        if warn not in _WARN:
            raise ValueError(f'warn={warn!r} must be one of {_WARN}')
        if 'ignore_empty' in kwargs:
            raise ValueError(
                "ignore_empty is replaced by on_error='skip'|'raise' in "
                'SafeLoadImageFromFile')
        super().__init__(**kwargs)
        self.on_error, self.warn = on_error, warn
        self._reported = _SharedOnceFlags() if (
            on_error == 'skip' and warn == 'once') else None

    def _read_bytes(self, filename: str) -> bytes:
        if self.file_client_args is not None:
            client = fileio.FileClient.infer_client(self.file_client_args,
                                                    filename)
            return client.get(filename)
        return fileio.get(filename, backend_args=self.backend_args)

    def _load(self, filename: str) -> np.ndarray:
        try:
            img_bytes = self._read_bytes(filename)
        except FileNotFoundError as e:
            raise ImageLoadError('file not found') from e
        if len(img_bytes) == 0:
            raise ImageLoadError('empty file (0 bytes)')
        try:
            img = mmcv.imfrombytes(img_bytes, flag=self.color_type,
                                   backend=self.imdecode_backend)
        except Exception as e:  # noqa: BLE001 - decoder-specific errors
            raise ImageLoadError(
                f'truncated or corrupt image ({type(e).__name__}: '
                f'{str(e).splitlines()[0] if str(e) else ""})') from e
        if img is None:
            raise ImageLoadError(
                f'the {self.imdecode_backend} decoder could not read it '
                f'(truncated, corrupt or not an image; {len(img_bytes)} '
                'bytes)')
        if self.color_type == 'color':
            img = to_three_channels(img)
        return img

    def transform(self, results: dict) -> Optional[dict]:
        filename = results['img_path']
        try:
            img = self._load(filename)
        except ImageLoadError as e:
            return self._on_bad_file(str(filename), str(e))
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results

    def _on_bad_file(self, filename: str, reason: str) -> None:
        if self.on_error == 'raise':
            raise ImageLoadError(
                f'Cannot load image "{filename}": {reason}. Fix or remove '
                "the file, or set on_error='skip' in SafeLoadImageFromFile "
                'to skip unreadable images with a warning.') from None
        if self.warn == 'always' or (self.warn == 'once'
                                     and self._reported.first(filename)):
            print_log(
                f'SafeLoadImageFromFile: skipped unreadable image '
                f'"{filename}": {reason}. Another sample is used in its '
                "place (on_error='skip'; set on_error='raise' to stop "
                'instead).' + (' Reported once per file.'
                               if self.warn == 'once' else ''),
                logger='current', level=logging.WARNING)
        return None

    def __repr__(self) -> str:
        return (super().__repr__()[:-1] + f", on_error='{self.on_error}', "
                f"warn='{self.warn}')")
