"""Test helpers (multi-process runs on CPU)."""
from .dist import find_free_port, run_in_processes

__all__ = ['find_free_port', 'run_in_processes']
