"""What ``tools/train.py`` checks before a (re)started run trains: is the
work directory writable, was this process restarted by the cluster
(SLURM requeue, torchrun elastic restart) so that it must resume, and is
the newest checkpoint intact.

``--resume`` without a path (auto) reads ``<work_dir>/last_checkpoint``
like mmengine, but first verifies the file it names: a torch checkpoint is
a zip archive whose members carry CRC-32 checksums, so
:func:`checkpoint_is_intact` reads it once and checks them (a truncated or
overwritten file fails). A damaged newest checkpoint stops the run with
:class:`DamagedCheckpointError`, which names it and offers the newest
intact checkpoint of the directory; with ``--resume-fallback`` that one is
taken (with a warning). Training never restarts from scratch silently: a
work directory that holds checkpoints but no ``last_checkpoint`` is treated
the same way.
"""
import glob
import os
import os.path as osp
import tempfile
import zipfile
from typing import List, Optional, Tuple

from .checkpoint_compat import CheckpointLoadError

#: environment variables that count restarts of the same run
RESTART_ENV = ('SLURM_RESTART_COUNT', 'TORCHELASTIC_RESTART_COUNT')


class DamagedCheckpointError(CheckpointLoadError):
    """The newest checkpoint of a work directory cannot be resumed."""


def restart_count() -> Tuple[int, Optional[str]]:
    """How often the cluster restarted this run, and the variable that says
    so (``SLURM_RESTART_COUNT`` after ``scontrol requeue``,
    ``TORCHELASTIC_RESTART_COUNT`` after a torchrun restart)."""
    for name in RESTART_ENV:
        try:
            n = int(os.environ.get(name, '0') or 0)
        except ValueError:
            continue
        if n > 0:
            return n, name
    return 0, None


def check_work_dir_writable(path: str, what: str = 'work_dir') -> None:
    """Create ``path`` if needed and write (then remove) a file in it;
    raise ``PermissionError`` naming the directory otherwise."""
    try:
        os.makedirs(path, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix='.write-test.', dir=path)
        os.close(fd)
        os.remove(probe)
    except OSError as e:
        raise PermissionError(
            f'{what} "{osp.abspath(path)}" is not writable ({e.strerror or e}'
            '): logs and checkpoints could not be saved. Choose another '
            'directory with `--work-dir`.') from None


def checkpoint_is_intact(path: str) -> Tuple[bool, str]:
    """``(True, '')`` if ``path`` is a complete torch checkpoint (a zip
    archive whose members all pass their CRC-32 check), else ``(False,
    reason)``."""
    if not osp.isfile(path):
        return False, 'the file does not exist'
    size = osp.getsize(path)
    if size == 0:
        return False, 'the file is empty (0 bytes)'
    try:
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        return False, (f'the file ({size} bytes) is truncated or corrupt '
                       f'[{type(e).__name__}: {e}]')
    if bad is not None:
        return False, (f'the file ({size} bytes) is corrupt: member {bad} '
                       'fails its CRC check')
    return True, ''


def checkpoints_newest_first(work_dir: str) -> List[str]:
    """``epoch_*.pth`` / ``iter_*.pth`` of ``work_dir``, newest (by
    modification time) first."""
    paths = glob.glob(osp.join(work_dir, 'epoch_*.pth')) + glob.glob(
        osp.join(work_dir, 'iter_*.pth'))
    return sorted(paths, key=osp.getmtime, reverse=True)


def resolve_auto_resume(work_dir: str, fallback: bool = False,
                        logger=None) -> Optional[str]:
    """The checkpoint ``--resume`` (auto) should resume from, or None for a
    fresh run (no checkpoint at all).

    Raises:
        DamagedCheckpointError: the newest checkpoint (named by
            ``last_checkpoint``) is damaged or missing and ``fallback`` is
            False; the message names it and the newest intact one.
    """
    pointer = osp.join(work_dir, 'last_checkpoint')
    named = None
    if osp.isfile(pointer):
        with open(pointer) as f:
            named = f.read().strip()
    candidates = checkpoints_newest_first(work_dir)
    if named:
        ok, why = checkpoint_is_intact(named)
        if ok:
            return named
        problem = (f'the newest checkpoint "{named}" (named by {pointer}) '
                   f'is damaged: {why}')
    elif not candidates:
        return None  # a fresh run
    else:
        problem = (f'{pointer} is ' + ('empty' if osp.isfile(pointer) else
                                       'missing') +
                   f' but {work_dir} holds {len(candidates)} checkpoint(s)')
    intact = None
    for path in candidates:
        if named and osp.abspath(path) == osp.abspath(named):
            continue
        if checkpoint_is_intact(path)[0]:
            intact = path
            break
    if intact is None:
        raise DamagedCheckpointError(
            f'Cannot resume: {problem}, and no intact checkpoint is left in '
            f'{work_dir}. Not training from scratch silently: remove the '
            'damaged file(s) (and last_checkpoint) to start over.')
    if fallback:
        msg = (f'{problem}; resuming from the newest intact checkpoint '
               f'"{intact}" (--resume-fallback).')
        if logger is not None:
            logger.warning(msg)
        else:
            print(f'warning: {msg}', flush=True)
        return intact
    raise DamagedCheckpointError(
        f'Cannot resume: {problem}. The newest intact checkpoint is '
        f'"{intact}": resume from it with `--resume {intact}`, or add '
        '`--resume-fallback` to take it automatically.')
