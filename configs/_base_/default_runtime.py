# Runtime defaults of mmssl_ext configs.
# `default_scope='mmssl_ext'`: our registries are children of MMPretrain's, so
# bare MMPretrain/MMEngine type names still resolve; `custom_imports` makes
# the package (and its checkpoint allow-list for torch.load) load first.
default_scope = 'mmssl_ext'
custom_imports = dict(imports=['mmssl_ext'], allow_failed_imports=False)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # atomic writes: a killed process never leaves a truncated checkpoint
    checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=3,
                    backend_args=dict(backend='atomic_local')),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='VisualizationHook', enable=False),
    # stop on a NaN/Inf loss (naming the iteration and the loss key) before
    # the bad step reaches a checkpoint
    nonfinite=dict(type='NonFiniteLossHook'),
    # mechanism diagnostics (pseudo-label NMI / purity, propagated-positive
    # precision, ...) against the training set's true labels, for models
    # that define `diagnostics`; monitoring only
    diagnostics=dict(type='DiagnosticsHook', interval=50),
    # every memory (bank, labels, neighbour table) has one row per training
    # sample, checked before training
    memory_check=dict(type='MemoryCheckHook'),
    # SIGTERM / SIGUSR1: every rank stops at the same iteration, one
    # complete checkpoint, exit status 75 (requeue); exact mid-epoch resume
    # (RNG states of every rank, batches already trained are skipped)
    preemption=dict(type='PreemptionHook'),
)

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # tools/train.py switches to gloo when no GPU is present.
    dist_cfg=dict(backend='nccl'),
)

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='UniversalVisualizer', vis_backends=vis_backends)

log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=None, deterministic=False)
log_processor = dict(window_size=10)
