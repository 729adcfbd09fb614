"""Checks of the CUDA code paths on a CPU machine: the fake-CUDA tracker
(device mismatches, host synchronisations) and the peak-memory estimator
behind tools/analysis_tools/fake_cuda_check.py and estimate_gpu_memory.py."""
