"""Launch-time environment fixes shared by ``tools/train.py`` and
``tools/test.py``.

Distributed training without GPUs: mmengine's ``init_dist('pytorch')`` calls
``torch.cuda.set_device`` and fails with ``RuntimeError: Found no NVIDIA
driver on your system``, and its default DDP wrapper passes
``device_ids=[LOCAL_RANK]``, which DDP rejects for CPU parameters. When the
launcher is distributed and CUDA is absent we initialise the process group
ourselves with the gloo backend (the Runner then skips ``init_dist``) and
wrap with ``device_ids=None``. On GPUs nothing changes: the config's
``env_cfg.dist_cfg`` (NCCL) is used, so the same scripts work on both.
"""
import os

import torch
import torch.distributed as torch_dist


def setup_distributed_cpu(cfg, launcher: str) -> bool:
    """Prepare ``cfg`` for a CPU-only distributed run. Returns True if the
    gloo process group was initialised here."""
    if launcher == 'none' or torch.cuda.is_available():
        return False
    if not torch_dist.is_initialized():
        if launcher != 'pytorch':
            raise RuntimeError(
                f'launcher={launcher!r} without GPUs is not supported; use '
                'tools/dist_train.sh (torchrun, launcher=pytorch)')
        for key in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
            if key not in os.environ:
                raise RuntimeError(f'--launcher pytorch needs ${key}; start '
                                   'with tools/dist_train.sh or torchrun')
        _init_gloo()
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})
    cfg.env_cfg.dist_cfg['backend'] = 'gloo'
    cfg.model_wrapper_cfg = {
        'type': 'MMDistributedDataParallel', 'broadcast_buffers': False,
        **(cfg.get('model_wrapper_cfg') or {}), 'device_ids': None}
    return True


def _init_gloo() -> None:
    """``init_process_group('gloo')`` from torchrun's environment. After an
    elastic restart (``TORCHELASTIC_RESTART_COUNT`` > 0) torchrun's store
    still holds the keys of the previous attempt (the listening addresses
    of the dead workers), which a new rank could read before its peer
    overwrites them (``Gloo connectFullMesh failed ... Connection
    refused``): each attempt uses its own key prefix."""
    restart = os.environ.get('TORCHELASTIC_RESTART_COUNT')
    if restart is None:
        torch_dist.init_process_group(backend='gloo')
        return
    from datetime import timedelta
    rank, world = int(os.environ['RANK']), int(os.environ['WORLD_SIZE'])
    agent = os.environ.get('TORCHELASTIC_USE_AGENT_STORE',
                           '').lower() == 'true'
    store = torch_dist.TCPStore(
        os.environ['MASTER_ADDR'], int(os.environ['MASTER_PORT']), world,
        is_master=not agent and rank == 0, timeout=timedelta(minutes=30))
    torch_dist.init_process_group(
        backend='gloo', rank=rank, world_size=world,
        store=torch_dist.PrefixStore(f'mmssl_ext/attempt_{restart}/', store))


def teardown_distributed() -> None:
    """End a distributed run cleanly: wait for every rank, then destroy the
    process group before the interpreter exits. Without this, gloo's
    background threads can outlive the group during interpreter teardown and
    a rank dies with ``terminate called without an active exception``
    (SIGABRT, a non-zero exit code) after training has finished."""
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.barrier()
        torch_dist.destroy_process_group()
