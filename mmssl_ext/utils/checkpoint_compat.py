"""Checkpoint I/O for mmengine runs under current PyTorch: safe loading,
atomic saving and clear errors. ``import mmssl_ext`` only *adds* to the
libraries (:func:`allow_mmengine_checkpoints`, idempotent: the allow-list
and a file backend under a new name); it replaces none of mmengine's
loaders or backends. Atomic saving and the checked loader apply where they
are asked for: a config's ``backend_args``, and
:func:`checked_checkpoint_loading` around a run (``tools/train.py``,
``tools/test.py``).

1. Safe loading (``weights_only``)
----------------------------------
PyTorch 2.6 changed ``torch.load``'s default to ``weights_only=True``.
mmengine 0.10.x calls ``torch.load(filename, map_location=...)`` without the
argument, so resuming one of its own checkpoints fails with::

    _pickle.UnpicklingError: Weights only load failed ... Unsupported global:
    GLOBAL mmengine.logging.history_buffer.HistoryBuffer

Instead of turning safety off for every load
(``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` or ``weights_only=False``), we allow-list
(``torch.serialization.add_safe_globals``) exactly the types an mmengine /
mmssl_ext checkpoint holds:

* ``message_hub``: mmengine's ``HistoryBuffer`` (its histories are numpy
  arrays) and ``runtime_info`` values, which may be numpy scalars (metrics);
* numpy arrays and scalars: ``numpy.ndarray``, ``numpy.dtype``, the concrete
  numeric/bool/str/bytes/datetime dtype classes of ``numpy.dtypes`` (numpy
  >= 1.25 builds a dtype object and then sets its state, so the class must be
  allowed), ``multiarray._reconstruct`` and ``multiarray.scalar``;
* ``getattr``: a ``HistoryBuffer``'s state holds its statistics methods,
  pickled as ``getattr(HistoryBuffer, 'min')`` etc. This is safe here: the
  weights-only unpickler only calls (``REDUCE``) functions that are
  themselves allow-listed, so ``getattr`` can fetch attributes of already
  allowed objects but nothing it returns can be executed.

Everything else mmengine writes is already allowed by PyTorch: tensors, the
optimizer state, ``param_schedulers`` state dicts (ints, floats, lists,
strings), ``meta`` (``seed``, ``epoch``, ``iter``, ``cfg`` text, ``time``,
``dataset_meta`` with tuples of class names), ``OrderedDict``, ``set``,
``torch.Size``, ``torch.device``. RNG states that methods may keep:
``torch.Generator.get_state()`` (a uint8 tensor), ``random.getstate()``
(tuples of ints), ``numpy.random.Generator.bit_generator.state`` (a dict of
ints) load without extra entries; ``numpy.random.RandomState.get_state()``
(a uint32 array) needs ``UInt32DType``, which is listed.
``tests/test_reliability/test_checkpoint_compat.py`` saves real Runner
checkpoints (two LR schedulers, SGD momentum, a seed, numpy validation
metrics) and resumes / ``load_from`` them with ``weights_only=True``;
``test_crash_recovery.py`` resumes MMPretrain MoCo v2 checkpoints (queue
buffer) of epoch- and iteration-based runs through ``tools/train.py``.
A checkpoint that holds another type (e.g. an arbitrary user class) still
fails, with PyTorch's message telling which global to allow: we never turn
the check off.

2. Atomic saving
----------------
mmengine's ``save_checkpoint`` serialises to memory and calls the file
backend's ``put``; the stock ``LocalBackend.put`` opens the target with
``'wb'`` and writes in place, so a process killed (SIGKILL, pre-emption,
node failure) while writing leaves a truncated ``epoch_N.pth``/``iter_N.pth``
under the final name, and a later overwrite of an existing name destroys the
good copy first. We register :class:`AtomicLocalBackend` as the file
backend ``'atomic_local'`` (``mmengine.fileio.register_backend``, the
documented extension point), selected by
``CheckpointHook(backend_args=dict(backend='atomic_local'))`` -- the default
runtime of this package and ``tools/train.py`` set it; mmengine's
``'local'`` backend stays what it is for everyone else.
``put``/``put_text`` write to a hidden temporary file in the same directory
(``.<name>.<random>.tmp``), ``flush`` + ``os.fsync`` it, ``os.replace`` it
onto the target (atomic on POSIX and Windows within one file system) and
fsync the directory. A reader therefore sees either the previous complete
file or the new complete file, never a partial one. A process killed while
writing only leaves the hidden ``.tmp`` file, which no mmengine code reads
and which the next successful write of the same name removes.
This covers the checkpoints of runs that select the backend; it does not
cover the deprecated ``file_client_args`` path nor remote backends (petrel,
http). mmengine's ``CheckpointHook`` only writes ``last_checkpoint`` after
the checkpoint itself is complete, so the "latest" pointer never names a
file that is still being written.

3. Clear errors on corrupt checkpoints
--------------------------------------
Inside :func:`checked_checkpoint_loading` the local checkpoint loader
(``CheckpointLoader`` scheme ``''``, used by ``Runner.resume``,
``load_from``, ``load_checkpoint`` and ``init_cfg`` ``Pretrained``) is
:func:`load_from_local_checked`; the previous loader is restored when the
block ends, even on an error. It
raises :class:`CheckpointLoadError` (a ``RuntimeError``) naming the file,
its size and the reason (empty, truncated/corrupt, missing, or an
unsupported type under ``weights_only``) instead of a zip/pickle traceback.
Auto-resume (``--resume`` without a path) reads ``work_dir/last_checkpoint``;
if the file it names is corrupt we stop with that error rather than silently
falling back to an older checkpoint (which could discard days of training
unnoticed): the message tells the user to pass ``--resume <older .pth>``
or delete the bad file.
"""
import errno
import glob
import os
import os.path as osp
import secrets
import shutil
import time
from contextlib import contextmanager, suppress
from typing import Union

import torch
from mmengine.fileio import LocalBackend

_NUMPY_DTYPE_CLASSES = (
    'BoolDType', 'Int8DType', 'Int16DType', 'Int32DType', 'Int64DType',
    'UInt8DType', 'UInt16DType', 'UInt32DType', 'UInt64DType', 'ByteDType',
    'UByteDType', 'ShortDType', 'UShortDType', 'IntDType', 'UIntDType',
    'LongDType', 'ULongDType', 'LongLongDType', 'ULongLongDType',
    'Float16DType', 'Float32DType', 'Float64DType', 'LongDoubleDType',
    'Complex64DType', 'Complex128DType', 'CLongDoubleDType', 'StrDType',
    'BytesDType', 'ObjectDType', 'DateTime64DType', 'TimeDelta64DType')


class CheckpointLoadError(RuntimeError):
    """A checkpoint file could not be read; the message names the file."""


class CheckpointWriteError(OSError):
    """A checkpoint could not be written for lack of space (or a file-size
    limit); the message names the path, the size needed and the space
    left. The previous file under that name is untouched."""


_NO_SPACE = {errno.ENOSPC, errno.EFBIG, getattr(errno, 'EDQUOT', -1)}


def _no_space_error(err: OSError, filepath: str,
                    needed: int) -> CheckpointWriteError:
    free, limit = 'free space unknown', ''
    with suppress(OSError):
        free = f'{shutil.disk_usage(osp.dirname(filepath)).free:,} bytes ' \
            'free on its file system'
    with suppress(ImportError, OSError, ValueError):
        import resource
        soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        if soft != resource.RLIM_INFINITY:
            limit = f', file-size limit (ulimit -f) {soft:,} bytes'
    e = CheckpointWriteError(
        err.errno,
        f'Cannot write checkpoint "{filepath}": {err.strerror}: '
        f'{needed:,} bytes needed, {free}{limit}. The previous file under '
        'this name (if any) is untouched and no partial file is left. Free '
        'space, or save checkpoints elsewhere '
        '(`default_hooks.checkpoint.out_dir`).')
    e.filename = filepath
    return e


def _checkpoint_globals() -> list:
    import numpy as np
    from mmengine.logging.history_buffer import HistoryBuffer

    allowed = [HistoryBuffer, np.ndarray, np.dtype, getattr]
    # numpy >= 2 moved the pickling helpers to numpy._core.
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 2
        from numpy.core import multiarray
    allowed += [multiarray._reconstruct, multiarray.scalar]
    # Concrete dtype classes (numpy >= 1.25; no np.dtypes before) appear in
    # pickled arrays/scalars.
    dtypes = getattr(np, 'dtypes', None)
    return allowed + [getattr(dtypes, name) for name in _NUMPY_DTYPE_CLASSES
                      if hasattr(dtypes, name)]


def _fsync_dir(path: str) -> None:
    # not possible on every platform (e.g. Windows); best effort
    with suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _remove_stale_temporaries(dirname: str, basename: str,
                              before: float) -> None:
    """Remove ``.<basename>.*.tmp`` files left by writers that were killed
    (older than ``before``, i.e. not a concurrent writer's); best effort."""
    for path in glob.glob(osp.join(glob.escape(dirname),
                                   f'.{glob.escape(basename)}.*.tmp')):
        with suppress(OSError):
            if os.stat(path).st_mtime < before:
                os.remove(path)


def atomic_write_bytes(data: bytes, filepath: Union[str, os.PathLike]) -> None:
    """Write ``data`` to ``filepath`` atomically and durably.

    The bytes go to a hidden temporary file ``.<name>.<random>.tmp`` in the
    target's directory, which is flushed, fsync'ed and then renamed onto the
    target with :func:`os.replace`. A symlink target is resolved first (the
    link is kept and its destination replaced). The new file gets the usual
    ``0o666 & ~umask`` permissions (the temporary file is created with
    them). On any error the temporary file is
    removed and the previous target (if any) is left untouched; lack of
    space (``ENOSPC``, ``EDQUOT``, ``EFBIG`` from a file-size limit) raises
    :class:`CheckpointWriteError` naming the path, the bytes needed and the
    space left. After a
    successful write, temporaries of the same target left by a killed writer
    are removed (so re-saving ``iter_8.pth`` after resuming cleans up the
    partial ``iter_8.pth`` of the run that died).
    """
    filepath = osp.realpath(os.fspath(filepath))
    dirname, basename = osp.split(filepath)
    os.makedirs(dirname, exist_ok=True)
    start = time.time() - 1.  # mtime granularity
    tmp = osp.join(dirname, f'.{basename}.{secrets.token_hex(6)}.tmp')
    # a new file (O_EXCL) with the mode the umask leaves of 0o666
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with open(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, filepath)
    except BaseException as e:
        with suppress(OSError):
            os.remove(tmp)
        if isinstance(e, OSError) and e.errno in _NO_SPACE:
            raise _no_space_error(e, filepath, len(data)) from e
        raise
    _fsync_dir(dirname)
    _remove_stale_temporaries(dirname, basename, start)


class AtomicLocalBackend(LocalBackend):
    """mmengine's ``LocalBackend`` whose ``put``/``put_text`` write
    atomically (temporary file + fsync + ``os.replace``, see
    :func:`atomic_write_bytes`); reads are unchanged. Registered as the
    ``'local'`` backend by :func:`allow_mmengine_checkpoints`."""

    def put(self, obj: bytes, filepath) -> None:
        atomic_write_bytes(obj, filepath)

    def put_text(self, obj: str, filepath, encoding: str = 'utf-8') -> None:
        atomic_write_bytes(obj.encode(encoding), filepath)


def _describe_failure(filename: str, err: BaseException) -> str:
    text = str(err).strip()
    # torch words it 'Unsupported global: GLOBAL x.y' for an unknown type and
    # 'unsupported GLOBAL x.y whose module x is blocked' for os, posix ...
    if 'unsupported global' in text.lower() or 'add_safe_globals' in text:
        return (f'Cannot load checkpoint "{filename}" with torch.load('
                'weights_only=True): it holds a type that is not allow-listed '
                '(mmssl_ext allow-lists the types mmengine checkpoints hold, '
                'see mmssl_ext/utils/checkpoint_compat.py). Only if you trust '
                'the file, allow the type named below with torch.serialization'
                f'.add_safe_globals([...]).\n{err}')
    # torch's weights-only errors put the actual cause after this marker
    if 'WeightsUnpickler error:' in text:
        text = text.split('WeightsUnpickler error:', 1)[1]
        text = text.split('Check the documentation', 1)[0]
    first = ' '.join(text.split())[:200]
    size = osp.getsize(filename)
    if size == 0:
        why = 'the file is empty (0 bytes)'
    else:
        why = (f'the file ({size} bytes) is truncated, corrupt or not a '
               'PyTorch checkpoint '
               f'[{type(err).__name__}: {first}]')
    return (f'Cannot load checkpoint "{filename}": {why}. It was probably '
            'cut short (copy interrupted, disk full) or damaged. Resume from '
            'another checkpoint (`--resume <work_dir>/<older>.pth` or '
            '`load_from=...`) or delete this file (and the work dir\'s '
            '`last_checkpoint` if it names it).')


def load_from_local_checked(filename, map_location=None):
    """mmengine's local checkpoint loader with errors that name the file.

    Same behaviour as ``mmengine.runner.checkpoint.load_from_local``
    (``torch.load`` with PyTorch's default ``weights_only=True``) but a
    missing, empty, truncated or otherwise unreadable file raises
    :class:`CheckpointLoadError` (``FileNotFoundError`` when missing) whose
    message names the file and what to do.
    """
    filename = osp.expanduser(filename)
    if filename == '':
        raise CheckpointLoadError(
            'Cannot load checkpoint: the path is empty. With auto-resume '
            '(`--resume` without a path) this means `<work_dir>/'
            'last_checkpoint` is empty (the process probably died while '
            'writing it): pass `--resume <work_dir>/<name>.pth` explicitly.')
    if not osp.isfile(filename):
        raise FileNotFoundError(
            f'Checkpoint "{filename}" can not be found (with auto-resume the '
            'path comes from `<work_dir>/last_checkpoint`).')
    try:
        return torch.load(filename, map_location=map_location)
    except Exception as e:  # noqa: BLE001 - re-raised naming the file
        raise CheckpointLoadError(_describe_failure(filename, e)) from None


#: name of :class:`AtomicLocalBackend` among mmengine's file backends
ATOMIC_BACKEND = 'atomic_local'


def allow_mmengine_checkpoints() -> None:
    """What ``import mmssl_ext`` adds (idempotent: the allow-list is a set,
    the backend is registered with ``force=True``; replaces nothing):

    1. allow-list the globals of mmengine checkpoints for ``weights_only``
       (a no-op on PyTorch versions without ``add_safe_globals``);
    2. register :class:`AtomicLocalBackend` as the file backend
       ``'atomic_local'``, selected by ``backend_args``.
    """
    add = getattr(torch.serialization, 'add_safe_globals', None)
    if add is not None:
        add(_checkpoint_globals())
    from mmengine.fileio import register_backend
    register_backend(ATOMIC_BACKEND, AtomicLocalBackend, force=True)


@contextmanager
def checked_checkpoint_loading():
    """Within the block, mmengine loads local checkpoints with
    :func:`load_from_local_checked` (errors naming the file); the previous
    loader is restored when the block ends, also on an error::

        with checked_checkpoint_loading():
            runner.train()
    """
    from mmengine.runner import CheckpointLoader

    # mmengine keeps the loaders in this class dict and offers no getter;
    # its own local loader is always registered under ''
    previous = CheckpointLoader._schemes['']
    CheckpointLoader.register_scheme(
        prefixes='', loader=load_from_local_checked, force=True)
    try:
        yield
    finally:
        CheckpointLoader.register_scheme(
            prefixes='', loader=previous, force=True)
