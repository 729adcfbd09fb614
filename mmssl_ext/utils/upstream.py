"""MMPretrain's own command-line tools, used as they are.

MMPretrain ships its ``tools/`` inside the installed package
(``mmpretrain/.mim/tools``, the OpenMMLab layout; a clone installed in
editable mode has them beside the package). Where one of them works for
this package's configs and logs, ``tools/`` here calls it instead of
copying it.
"""
import os.path as osp
import runpy
import sys
from typing import List, Optional


def mmpretrain_tool(relpath: str) -> str:
    """Path of ``tools/<relpath>`` of the installed MMPretrain."""
    from mmengine.utils import get_installed_path
    root = get_installed_path('mmpretrain')
    candidates = [osp.join(root, '.mim', 'tools', relpath),
                  osp.join(osp.dirname(root), 'tools', relpath)]
    for path in candidates:
        if osp.isfile(path):
            return path
    raise FileNotFoundError(
        f'MMPretrain\'s tools/{relpath} is not installed (looked in '
        f'{candidates}); install mmpretrain from PyPI (its wheel ships '
        'tools/ in mmpretrain/.mim) or from a clone with `pip install -e .`')


def run_mmpretrain_tool(relpath: str, argv: List[str],
                        prog: Optional[str] = None) -> None:
    """Run MMPretrain's ``tools/<relpath>`` as ``python <it> argv...``."""
    path = mmpretrain_tool(relpath)
    saved = sys.argv
    sys.argv = [prog or path] + list(argv)
    try:
        runpy.run_path(path, run_name='__main__')
    finally:
        sys.argv = saved


def load_mmpretrain_tool(relpath: str) -> dict:
    """The globals of MMPretrain's ``tools/<relpath>`` (its functions),
    without running its ``main``."""
    return runpy.run_path(mmpretrain_tool(relpath), run_name='__mmssl__')
