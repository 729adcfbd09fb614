"""``mmssl_ext::`` config bases, as ``mmpretrain::`` and ``mmdet::``.

MMEngine resolves ``_base_ = ['<package>::<folder>/<config>.py']`` only for
the packages of its table ``mmengine.config.utils.MODULE2PACKAGE`` (the
OpenMMLab codebases), then reads the file from the installed package's
``.mim/configs`` (which ``pip install`` of this package provides, see
``setup.py``). Importing ``mmssl_ext`` adds this package to that table, so a
config can inherit ours once ``mmssl_ext`` is imported: ``tools/train.py``
and ``tools/test.py`` import it before they read the config; a script of
your own does ``import mmssl_ext`` before ``Config.fromfile``.
"""

PACKAGE = 'mmssl_ext'


def register_config_prefix() -> None:
    """Let MMEngine's config loader resolve ``mmssl_ext::`` bases."""
    from mmengine.config.utils import MODULE2PACKAGE
    MODULE2PACKAGE.setdefault(PACKAGE, PACKAGE)
