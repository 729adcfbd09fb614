"""Test helpers (multi-process runs on CPU, tiny Runner configs); test-only
code, kept out of the library."""
from .dist import find_free_port, run_in_processes
from .runner import (TINY_BACKBONE, TINY_PREPROCESSOR, dataloader,
                     runner_cfg, synthetic_dataset)

__all__ = [
    'find_free_port', 'run_in_processes', 'TINY_BACKBONE',
    'TINY_PREPROCESSOR', 'dataloader', 'runner_cfg', 'synthetic_dataset'
]
