"""Run a function in ``world_size`` CPU processes joined by a gloo process
group, the way our distributed tests do.

Example::

    def _fn(rank, world_size, x):      # module level: picklable
        from mmengine import dist
        return dist.get_rank(), x * 2

    results = run_in_processes(_fn, world_size=2, args=(3, ))
    # results == [(0, 6), (1, 6)]

Inside ``fn`` ``torch.distributed`` is initialised (backend gloo, CPU), so
:mod:`mmengine.dist` and :mod:`mmssl_ext.utils.dist` see the group; the
environment variables ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR`` and ``MASTER_PORT`` are set as ``torchrun`` would. Each
process uses one torch thread.
"""
import os
import pickle
import queue as _queue
import socket
import traceback
from datetime import timedelta
from typing import Any, Callable, List, Optional, Sequence

import torch.multiprocessing as mp

__all__ = ['find_free_port', 'run_in_processes']


def find_free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _worker(rank: int, world_size: int, port: int, fn: Callable,
            args: Sequence, queue, timeout_s: float) -> None:
    import torch
    import torch.distributed as torch_dist
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world_size),
        LOCAL_WORLD_SIZE=str(world_size),
        MASTER_ADDR='127.0.0.1',
        MASTER_PORT=str(port),
        OMP_NUM_THREADS='1')
    torch.set_num_threads(1)
    try:
        torch_dist.init_process_group(
            backend='gloo',
            init_method=f'tcp://127.0.0.1:{port}',
            rank=rank,
            world_size=world_size,
            timeout=timedelta(seconds=timeout_s))
        out = fn(rank, world_size, *args)
        # plain pickle copies tensor storages by value (no shared memory
        # that would vanish with this process)
        payload = ('ok', rank, pickle.dumps(out))
    except BaseException:  # noqa: B902 - report everything to the parent
        payload = ('err', rank, traceback.format_exc())
    queue.put(payload)
    try:
        if torch_dist.is_initialized():
            torch_dist.destroy_process_group()
    except Exception:  # pragma: no cover
        pass


def run_in_processes(fn: Callable,
                     world_size: int = 2,
                     args: Sequence = (),
                     timeout: float = 180.,
                     start_method: Optional[str] = None) -> List[Any]:
    """Run ``fn(rank, world_size, *args)`` in ``world_size`` processes.

    Args:
        fn (callable): called as ``fn(rank, world_size, *args)`` after the
            gloo group is up. With the ``'spawn'`` start method it must be
            picklable (defined at module level).
        world_size (int): number of processes. Defaults to 2.
        args (Sequence): extra positional arguments (picklable).
        timeout (float): seconds to wait for all ranks (also the collective
            timeout). Defaults to 180.
        start_method (str, optional): ``'fork'`` (default where available:
            fast, no re-import) or ``'spawn'``.

    Returns:
        list: ``fn``'s return value of each rank, in rank order (pickled
        back by value, so tensors are plain CPU/whatever-device copies).

    Raises:
        RuntimeError: a rank raised (its traceback is in the message) or the
            ranks did not finish within ``timeout``.
    """
    if world_size < 1:
        raise ValueError(f'world_size must be >= 1, got {world_size}')
    if start_method is None:
        start_method = ('fork' if 'fork' in mp.get_all_start_methods() else
                        'spawn')
    ctx = mp.get_context(start_method)
    queue = ctx.Queue()
    port = find_free_port()
    procs = [
        ctx.Process(
            target=_worker,
            args=(r, world_size, port, fn, tuple(args), queue, timeout),
            daemon=True) for r in range(world_size)
    ]
    for p in procs:
        p.start()
    results: List[Any] = [None] * world_size
    errors = []
    try:
        for _ in range(world_size):
            try:
                status, rank, data = queue.get(timeout=timeout)
            except _queue.Empty:
                errors.append(f'timed out after {timeout}s waiting for the '
                              'ranks (a collective may be unmatched)')
                break
            if status == 'ok':
                results[rank] = pickle.loads(data)
            else:
                errors.append(f'rank {rank} failed:\n{data}')
                break  # the others may now hang in a collective
    finally:
        for p in procs:
            p.join(timeout=5 if not errors else 0.5)
        for p in procs:
            if p.is_alive():
                p.terminate()
                p.join(timeout=5)
    if errors:
        raise RuntimeError('run_in_processes: ' + '\n'.join(errors))
    return results
