"""Parts of the GPU validation kit (see tools/gpu_check/README.md)."""
