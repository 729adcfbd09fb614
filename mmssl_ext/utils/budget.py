"""Shortening or lengthening a recipe while keeping the schedule-tied knobs
in proportion (used by the demo and the digits quality benchmark)."""

# keys holding an epoch count tied to the schedule, wherever they appear in
# the model / custom hooks (scaled by epochs / budget_epochs, at least 1)
EPOCH_KEYS = ('warmup_epochs', 'interval', 'ramp_epochs', 'rampup_epoch',
              'start_epoch',
              'rampup_start_epoch', 'rampup_end_epoch', 'epoch_queue_starts')


def _scale_epochs_in(obj, f, moved, path=''):
    if isinstance(obj, dict):
        for k, v in obj.items():
            p = f'{path}.{k}' if path else k
            if k in EPOCH_KEYS and isinstance(v, int) and not isinstance(
                    v, bool) and v > 0:
                new = max(1, int(round(v * f)))
                if new != v:
                    obj[k] = new
                    moved.append(f'{p}: {v}->{new}')
            else:
                _scale_epochs_in(v, f, moved, p)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            _scale_epochs_in(v, f, moved, f'{path}[{i}]')


def scale_schedule(cfg, epochs: int, budget_epochs: int) -> list:
    """Rescale every schedule-tied knob of ``cfg`` (written for
    ``budget_epochs``) to ``epochs``, in proportion: max_epochs, by-epoch
    LR schedulers, and epoch counts of the model and custom hooks (warm-up,
    ramp-up, refresh intervals). Returns a list of what moved."""
    f = epochs / budget_epochs
    moved = []
    cfg.train_cfg.max_epochs = epochs
    cfg.train_cfg.val_interval = epochs
    for s in cfg.param_scheduler:
        if not s.get('by_epoch', True):
            continue
        for k in ('begin', 'end', 'T_max'):
            if isinstance(s.get(k), int) and s[k] > 0:
                new = max(1, int(round(s[k] * f))) if s[k] < 10**6 else s[k]
                if new != s[k]:
                    moved.append(f"{s['type']}.{k}: {s[k]}->{new}")
                    s[k] = new
    _scale_epochs_in(cfg.model, f, moved, 'model')
    hooks = cfg.get('custom_hooks', [])
    _scale_epochs_in(hooks, f, moved, 'custom_hooks')
    return moved
