"""mmssl_ext: inter-instance and view-crafting self-supervised methods for
the OpenMMLab stack (MMEngine + MMPretrain + MMDetection).

``custom_imports=dict(imports=['mmssl_ext'])`` in a config imports this
module, which registers every type and makes mmengine checkpoints loadable
under PyTorch's ``weights_only`` default (an allow-list; no loader of
mmengine is replaced, see :mod:`mmssl_ext.utils.checkpoint_compat`).
"""
import warnings

from .version import __version__
from .utils.checkpoint_compat import allow_mmengine_checkpoints
from .utils.config_prefix import register_config_prefix

# Stack incompatibilities, each fixed in one documented place:
allow_mmengine_checkpoints()  # weights_only allow-list, 'atomic_local' backend
register_config_prefix()  # `mmssl_ext::` config bases (MMEngine's table)


def _soft_version_check() -> None:
    # OpenMMLab packages assert narrow version ranges at import; we only warn
    # (see README "Tested stack").
    try:
        import mmengine
        import mmpretrain
    except ImportError as e:  # pragma: no cover
        raise ImportError(
            'mmssl_ext needs mmengine and mmpretrain; run `make setup` or '
            f'install the stack listed in requirements/ ({e})') from e
    from mmengine.utils import digit_version
    if digit_version(mmpretrain.__version__) < digit_version('1.2.0'):
        warnings.warn(f'mmssl_ext is tested with mmpretrain 1.2.0, found '
                      f'{mmpretrain.__version__}')
    if digit_version(mmengine.__version__) < digit_version('0.10.0'):
        warnings.warn(f'mmssl_ext is tested with mmengine 0.10.7, found '
                      f'{mmengine.__version__}')


_soft_version_check()

from . import ccrop, datasets, engine, evaluation, models, visualization  # noqa: E402,F401,I001

__all__ = ['__version__']
