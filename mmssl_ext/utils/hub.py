"""Loading checkpoints from a local path or a URL, with an optional SHA-256
check.

Downloads go through the standard loaders: PyTorch's hub downloader into
``<torch hub dir>/checkpoints`` (``$TORCH_HOME``), the same cache mmengine's
``load_from_http`` (``init_cfg=dict(type='Pretrained', checkpoint=URL)``,
``load_from=URL``) reads, and the object is then loaded by
``mmengine.runner.CheckpointLoader``. The hash is checked on the file
*before* it is unpickled.

``sha256`` may be the full 64-digit digest or a prefix of at least 8 digits.
When none is given for a URL whose file name follows the OpenMMLab /
torch.hub convention ``name-<first 8+ hex digits of sha256>.pth``, that
prefix is checked.
"""
import hashlib
import os
import os.path as osp
import re
from typing import Optional
from urllib.parse import urlparse

_HASH_RE = re.compile(r'-([a-f0-9]{8,64})\.[a-zA-Z0-9]+$')


class ChecksumError(RuntimeError):
    """The file on disk does not have the expected SHA-256 digest."""


def is_url(path: str) -> bool:
    return path.startswith(('http://', 'https://'))


def file_sha256(path: str, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 digest of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk_size), b''):
            h.update(block)
    return h.hexdigest()


def hash_prefix_from_name(path_or_url: str) -> Optional[str]:
    """The ``-<hex>`` suffix of an OpenMMLab / torch.hub file name, if any
    (``..._20220825-b6d23c86.pth`` -> ``'b6d23c86'``)."""
    name = osp.basename(urlparse(path_or_url).path if is_url(path_or_url)
                        else path_or_url)
    m = _HASH_RE.search(name)
    return m.group(1) if m else None


def _check_digest_arg(sha256: str) -> str:
    sha256 = sha256.strip().lower()
    if not re.fullmatch(r'[0-9a-f]{8,64}', sha256):
        raise ValueError('sha256 must be 8 to 64 hexadecimal digits (a full '
                         f'digest or its prefix), got {sha256!r}')
    return sha256


def verify_sha256(path: str, sha256: str) -> str:
    """Raise :class:`ChecksumError` unless the digest of ``path`` starts
    with ``sha256``; return the full digest."""
    sha256 = _check_digest_arg(sha256)
    digest = file_sha256(path)
    if not digest.startswith(sha256):
        raise ChecksumError(
            f'SHA-256 mismatch for {path}: expected {sha256}..., got '
            f'{digest}. The file is corrupt, truncated or not the published '
            'one; delete it (a cached download is fetched again).')
    return digest


def cached_path(url: str, model_dir: Optional[str] = None) -> str:
    """Where the standard (torch.hub / mmengine) loader caches ``url``."""
    if model_dir is None:
        import torch.hub
        model_dir = osp.join(torch.hub.get_dir(), 'checkpoints')
    return osp.join(model_dir, osp.basename(urlparse(url).path))


def download_verified(url: str,
                      sha256: Optional[str] = None,
                      model_dir: Optional[str] = None,
                      progress: bool = True) -> str:
    """Download ``url`` into the standard cache (once) and return the local
    path, checking the SHA-256 (given, or taken from the file name)."""
    import torch.hub
    dst = cached_path(url, model_dir)
    expected = _check_digest_arg(sha256) if sha256 else hash_prefix_from_name(
        url)
    if not osp.isfile(dst):
        os.makedirs(osp.dirname(dst), exist_ok=True)
        # torch.hub checks ``hash_prefix`` on the streamed bytes and removes
        # the temporary file on mismatch.
        try:
            torch.hub.download_url_to_file(
                url, dst, hash_prefix=expected, progress=progress)
        except RuntimeError as e:
            if 'invalid hash value' in str(e):
                raise ChecksumError(f'SHA-256 mismatch downloading {url}: '
                                    f'{e}') from e
            raise
    elif expected:
        verify_sha256(dst, expected)
    return dst


#: metafile fields with the expected digest of a row's ``Weights``: the full
#: 64-digit digest, or its first 8 or more digits (OpenMMLab's file names)
SHA256_FIELDS = ('Weights SHA256', 'Weights SHA256 Prefix')


def _default_index() -> Optional[str]:
    """``model-index.yml`` of this package: the repository's (a clone or an
    editable install) or the one a wheel ships in ``mmssl_ext/.mim/``."""
    pkg = osp.dirname(osp.dirname(osp.abspath(__file__)))
    for path in (osp.join(osp.dirname(pkg), 'model-index.yml'),
                 osp.join(pkg, '.mim', 'model-index.yml')):
        if osp.isfile(path):
            return path
    return None


def _read_yaml(path: Optional[str]) -> dict:
    """The mapping in the YAML file ``path``; empty if there is none."""
    if not path or not osp.isfile(path):
        return {}
    import yaml
    with open(path) as f:
        return yaml.safe_load(f) or {}


def lookup_sha256(url: str, index: Optional[str] = None) -> Optional[str]:
    """The digest (``Weights SHA256``, else ``Weights SHA256 Prefix``) a
    model-zoo metafile gives for ``url`` (searched through the ``Import``
    list of ``model-index.yml``; default: this package's), or None."""
    index = index or _default_index()
    root = osp.dirname(osp.abspath(index or ''))
    for rel in _read_yaml(index).get('Import') or []:
        for row in _read_yaml(osp.join(root, rel)).get('Models') or []:
            for field in SHA256_FIELDS:
                if row.get('Weights') == url and row.get(field):
                    return str(row[field])
    return None


def load_checkpoint_verified(url_or_path: str,
                             sha256: Optional[str] = None,
                             map_location: str = 'cpu',
                             model_dir: Optional[str] = None,
                             check_name_hash: bool = True,
                             allow_pickle: bool = False) -> dict:
    """Load a checkpoint (local path or http(s) URL) with mmengine's standard
    loader after checking its SHA-256 (local files: errors naming the file,
    :func:`~mmssl_ext.utils.checkpoint_compat.checked_checkpoint_loading`).

    Args:
        url_or_path (str): local file or URL (other mmengine schemes such as
            ``torchvision://`` are passed through without a check).
        sha256 (str, optional): expected digest (full or >= 8-digit
            prefix). For a URL without one, the ``Weights SHA256`` (or
            ``Weights SHA256 Prefix``) of the model-zoo row whose
            ``Weights`` is that URL is used.
        map_location (str): as in :func:`torch.load`.
        model_dir (str, optional): download cache (default: torch hub dir).
        check_name_hash (bool): for a URL without ``sha256``, check the
            ``-<hex>`` suffix of the file name if it has one.
        allow_pickle (bool): load with ``weights_only=False`` (any pickled
            Python object) instead of PyTorch's safe loader. Unpickling can
            execute arbitrary code: only for files whose origin is trusted.
            The hash is still checked first. Defaults to False.

    Returns:
        The loaded object (usually a dict with ``state_dict`` and ``meta``).
    """
    import mmssl_ext.utils.checkpoint_compat as compat
    compat.allow_mmengine_checkpoints()
    with compat.checked_checkpoint_loading():
        if is_url(url_or_path):
            sha256 = sha256 or lookup_sha256(url_or_path)
            if allow_pickle or sha256 or check_name_hash:
                # pickles are always read from a local (checked) copy
                url_or_path = download_verified(url_or_path, sha256 or None,
                                                model_dir=model_dir)
        elif '://' not in url_or_path:
            path = osp.expanduser(url_or_path)
            if not osp.isfile(path):
                raise FileNotFoundError(f'checkpoint {url_or_path} not found')
            # local files are checked only against an explicit digest: user
            # file names may end in '-<hex>' by chance
            if sha256:
                verify_sha256(path, sha256)
            url_or_path = path
        elif allow_pickle:  # other mmengine schemes: no local copy to check
            raise ValueError(f'allow_pickle needs a local path or an '
                             f'http(s) URL, got {url_or_path}')
        if not allow_pickle:
            from mmengine.runner import CheckpointLoader
            return CheckpointLoader.load_checkpoint(url_or_path, map_location)
        import torch

        # explicit opt-in of the caller: arbitrary objects (and code) allowed
        return torch.load(url_or_path, map_location=map_location,
                          weights_only=False)
