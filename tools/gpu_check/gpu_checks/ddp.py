"""Check 4: two processes on the one device (a real Runner with
MMDistributedDataParallel) train the InterCLR and InvP digits recipes; the
replicated method state and the weights must be identical on both ranks.

NCCL refuses two ranks on one GPU in most versions; the kit tries it in a
throw-away pair of processes first and falls back to gloo, which carries
CUDA tensors through host memory (mmengine.dist and DDP both support it).
"""
import os
import pickle
import queue as _queue
import socket
import time
import traceback
from datetime import timedelta

#: state that legitimately differs between ranks (per-rank BN statistics:
#: the recipes set broadcast_buffers=False)
_PER_RANK = ('running_mean', 'running_var', 'num_batches_tracked')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _env(rank, world, port):
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_WORLD_SIZE=str(world),
                      MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))


def _probe(rank, world, backend, port, q):
    """Rank body of the backend probe: one all_reduce on cuda:0."""
    try:
        import torch
        import torch.distributed as dist
        _env(rank, world, port)
        torch.cuda.set_device(0)
        dist.init_process_group(backend, init_method=f'tcp://127.0.0.1:{port}',
                                rank=rank, world_size=world,
                                timeout=timedelta(seconds=30))
        t = torch.ones(4, device='cuda:0')
        dist.all_reduce(t)
        torch.cuda.synchronize()
        ok = float(t[0]) == world
        dist.destroy_process_group()
        q.put((rank, 'ok' if ok else f'wrong sum {float(t[0])}'))
    except BaseException as e:  # noqa: B902
        q.put((rank, f'{type(e).__name__}: {str(e)[:600]}'))


def _train(rank, world, backend, port, rows, settings, mode, forbid, q):
    """Rank body: train each digits row for one epoch under DDP, return the
    state dicts (CPU copies, pickled by value)."""
    try:
        _env(rank, world, port)
        from .common import setup_process
        setup_process(forbid)
        import torch
        import torch.distributed as dist
        if mode == 'cuda':
            torch.cuda.set_device(0)
        else:
            torch.set_num_threads(1)
        dist.init_process_group(backend, init_method=f'tcp://127.0.0.1:{port}',
                                rank=rank, world_size=world,
                                timeout=timedelta(seconds=180))
        from mmengine.runner import Runner
        from mmpretrain.utils import get_ori_model

        from .digits import LossRecorder, build_cfg
        from .rows import digits_table
        table = {r: c for r, c, _ in digits_table()}
        out = {}
        for row in rows:
            t0 = time.perf_counter()
            cfg, _ = build_cfg(
                table[row], os.path.join(settings['work_root'],
                                         f'ddp-{row}'), f'ddp-{row}',
                settings['n'], settings['batch'], 1, 0, amp=False,
                img_size=settings.get('img_size', 32))
            cfg.default_hooks.checkpoint = dict(
                type='CheckpointHook', interval=-1, save_last=False)
            cfg.launcher = 'pytorch'
            wrapper = dict(cfg.get('model_wrapper_cfg') or {})
            wrapper.update(type='MMDistributedDataParallel',
                           broadcast_buffers=False,
                           device_ids=[0] if mode == 'cuda' else None)
            cfg.model_wrapper_cfg = wrapper
            cfg.env_cfg.dist_cfg = dict(backend=backend)
            runner = Runner.from_cfg(cfg)
            rec = LossRecorder()
            runner.register_hook(rec)
            runner.train()
            model = get_ori_model(runner.model)
            state = {k: v.detach().cpu().clone()
                     for k, v in model.state_dict().items()
                     if not any(s in k for s in _PER_RANK)}
            out[row] = dict(state=state, losses=rec.summary(),
                            wrapper=type(runner.model).__name__,
                            world=dist.get_world_size(),
                            device=str(next(model.parameters()).device),
                            seconds=time.perf_counter() - t0)
            del runner, model
        dist.barrier()
        dist.destroy_process_group()
        q.put((rank, 'ok', pickle.dumps(out)))
    except BaseException:  # noqa: B902
        q.put((rank, 'err', traceback.format_exc()[-4000:]))


def _launch(ctx, target, args_of_rank, world, timeout):
    """Start ``world`` processes, collect one message each (or time out),
    then make sure none is left running."""
    q = ctx.Queue()
    procs = [ctx.Process(target=target, args=args_of_rank(r) + (q, ),
                         daemon=True) for r in range(world)]
    for p in procs:
        p.start()
    msgs, deadline = {}, time.monotonic() + timeout
    try:
        while len(msgs) < world:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                m = q.get(timeout=min(left, 5.))
            except _queue.Empty:
                if not any(p.is_alive() for p in procs) and q.empty():
                    break
                continue
            msgs[m[0]] = m[1:]
    finally:
        for p in procs:
            p.join(timeout=5)
        for p in procs:
            if p.is_alive():
                p.terminate()
                p.join(timeout=5)
    return msgs


def probe_nccl(timeout: float = 45.) -> dict:
    import torch.multiprocessing as mp
    port = _free_port()
    t0 = time.perf_counter()
    msgs = _launch(mp.get_context('spawn'), _probe,
                   lambda r: (r, 2, 'nccl', port), 2, timeout)
    res = {r: m[0] for r, m in msgs.items()}
    works = len(res) == 2 and all(v == 'ok' for v in res.values())
    return dict(backend='nccl', works=works,
                ranks={str(r): v for r, v in sorted(res.items())} or
                f'no answer within {timeout:.0f} s',
                seconds=round(time.perf_counter() - t0, 1))


def train_two_ranks(backend: str, rows, settings: dict, mode: str, forbid,
                    timeout: float) -> dict:
    import torch.multiprocessing as mp
    port = _free_port()
    # spawn on CUDA (a forked child cannot use the parent's CUDA context);
    # fork on the CPU, where it is faster and safe
    ctx = mp.get_context('spawn' if mode == 'cuda' else 'fork')
    msgs = _launch(ctx, _train, lambda r: (r, 2, backend, port, tuple(rows),
                                           settings, mode, tuple(forbid)),
                   2, timeout)
    errors = {r: m[1] for r, m in msgs.items() if m[0] != 'ok'}
    if errors or len(msgs) < 2:
        missing = [r for r in (0, 1) if r not in msgs]
        text = '\n'.join(f'rank {r}:\n{e}' for r, e in sorted(errors.items()))
        if missing:
            text += f'\nno result from rank(s) {missing} within {timeout:.0f}s'
        raise RuntimeError(text)
    return {r: pickle.loads(m[1]) for r, m in msgs.items()}
