"""The base of this package's algorithms."""
from mmpretrain.models import BaseSelfSupervisor


def scoped(cfg):
    """A module config that resolves in the mmssl_ext scope (whatever the
    config's ``default_scope``; MMPretrain names still resolve through the
    parent registries)."""
    if isinstance(cfg, dict):
        cfg = dict(cfg)
        cfg.setdefault('_scope_', 'mmssl_ext')
    return cfg


class SelfSupervisor(BaseSelfSupervisor):
    """:class:`~mmpretrain.models.BaseSelfSupervisor` whose
    :meth:`extract_feat` takes a tensor or a list of views (the first view
    is used) and applies ``self.sobel`` first when the algorithm has one
    (DeepCluster's grayscale + Sobel input)."""

    def __init__(self, backbone: dict, neck: dict, head=None, **kwargs):
        super().__init__(backbone=scoped(backbone), neck=scoped(neck),
                         head=scoped(head), **kwargs)
        temperature = getattr(self.head, 'temperature', None)
        if temperature is not None and not temperature > 0:
            raise ValueError(
                f'model.head.temperature={temperature!r} must be > 0')

    def extract_feat(self, inputs, **kwargs):
        """Backbone features of ``inputs`` (a tensor or a list of views:
        the first view is used)."""
        if isinstance(inputs, (list, tuple)):
            inputs = inputs[0]
        sobel = getattr(self, 'sobel', None)  # a module: not a class default
        if sobel is not None:
            inputs = sobel(inputs)
        return self.backbone(inputs)
