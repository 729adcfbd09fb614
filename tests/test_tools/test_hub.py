"""mmssl_ext.utils.hub: SHA-256 checked checkpoint loading (local and URL,
the download faked by a local copy: no network in tests)."""
import hashlib
import os
import shutil

import pytest
import torch

from mmssl_ext.utils import hub


@pytest.fixture
def ckpt_file(tmp_path):
    path = str(tmp_path / 'model.pth')
    torch.save({'state_dict': {'w': torch.arange(4.)}, 'meta': {'a': 1}},
               path)
    with open(path, 'rb') as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    return path, digest


def test_local_verified(ckpt_file):
    path, digest = ckpt_file
    assert hub.file_sha256(path) == digest
    ck = hub.load_checkpoint_verified(path, sha256=digest)
    assert torch.equal(ck['state_dict']['w'], torch.arange(4.))
    hub.load_checkpoint_verified(path, sha256=digest[:8].upper())  # prefix
    bad = ('0' if digest[0] != '0' else '1') + digest[1:]
    with pytest.raises(hub.ChecksumError, match='SHA-256 mismatch'):
        hub.load_checkpoint_verified(path, sha256=bad)
    with pytest.raises(ValueError, match='hexadecimal'):
        hub.load_checkpoint_verified(path, sha256='xyz')
    with pytest.raises(FileNotFoundError):
        hub.load_checkpoint_verified(path + '.missing')


def test_hash_prefix_from_name():
    url = ('https://download.openmmlab.com/mmselfsup/1.x/mocov2/'
           'mocov2_resnet50_8xb32-coslr-200e_in1k_20220825-b6d23c86.pth')
    assert hub.hash_prefix_from_name(url) == 'b6d23c86'
    assert hub.hash_prefix_from_name('work_dirs/epoch_10.pth') is None


def test_url_download_cached_and_checked(ckpt_file, tmp_path, monkeypatch):
    src, digest = ckpt_file
    calls = []

    def fake_download(url, dst, hash_prefix=None, progress=True):
        calls.append(url)
        with open(src, 'rb') as f:
            data = f.read()
        if hash_prefix and not hashlib.sha256(data).hexdigest().startswith(
                hash_prefix):
            raise RuntimeError(f'invalid hash value (expected '
                               f'"{hash_prefix}")')
        shutil.copy(src, dst)

    monkeypatch.setattr(torch.hub, 'download_url_to_file', fake_download)
    cache = str(tmp_path / 'cache')
    # the -<hash8> suffix of the published file name is checked
    url = f'https://example.org/ckpts/model_20250101-{digest[:8]}.pth'
    ck = hub.load_checkpoint_verified(url, model_dir=cache)
    assert ck['meta'] == {'a': 1}
    assert os.path.isfile(hub.cached_path(url, cache))
    hub.load_checkpoint_verified(url, sha256=digest, model_dir=cache)
    assert len(calls) == 1  # second load from the cache
    # a wrong digest: nothing is cached, a clear error
    bad_url = 'https://example.org/ckpts/model_20250101-deadbeef.pth'
    if digest.startswith('deadbeef'):  # pragma: no cover
        pytest.skip('collision with the fake digest')
    with pytest.raises(hub.ChecksumError, match='SHA-256 mismatch'):
        hub.load_checkpoint_verified(bad_url, model_dir=cache)
    assert not os.path.exists(hub.cached_path(bad_url, cache))
    # a corrupted cached file is detected on the next load
    with open(hub.cached_path(url, cache), 'ab') as f:
        f.write(b'garbage')
    with pytest.raises(hub.ChecksumError):
        hub.load_checkpoint_verified(url, model_dir=cache)


def test_sha256_from_metafile(tmp_path):
    (tmp_path / 'configs' / 'm').mkdir(parents=True)
    (tmp_path / 'model-index.yml').write_text(
        'Import:\n  - configs/m/metafile.yml\n')
    (tmp_path / 'configs' / 'm' / 'metafile.yml').write_text(
        'Models:\n'
        '  - Name: a\n    Results: null\n    Config: configs/m/a.py\n'
        '  - Name: b\n    Weights: https://example.org/b.pth\n'
        '    Weights SHA256 Prefix: 0123abcd\n    Config: configs/m/b.py\n'
        '  - Name: d\n    Weights: https://example.org/d.pth\n'
        f'    Weights SHA256: {"ab" * 32}\n    Config: configs/m/d.py\n')
    index = str(tmp_path / 'model-index.yml')
    assert hub.lookup_sha256('https://example.org/b.pth', index) == \
        '0123abcd'
    assert hub.lookup_sha256('https://example.org/d.pth', index) == 'ab' * 32
    assert hub.lookup_sha256('https://example.org/c.pth', index) is None
    # the repository's own index has no published checkpoint yet
    assert hub.lookup_sha256('https://example.org/b.pth') is None


class _MakesADirectoryWhenUnpickled:
    """Unpickling it calls os.mkdir(path): a harmless stand-in for the
    arbitrary code a malicious checkpoint could run."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path, ))


def test_allow_pickle_is_an_explicit_opt_in_checked_by_hash(tmp_path):
    marker = str(tmp_path / 'code_ran')
    path = str(tmp_path / 'unsafe.pth')
    torch.save({'state_dict': {'w': torch.ones(2)},
                'payload': _MakesADirectoryWhenUnpickled(marker)}, path)
    digest = hub.file_sha256(path)
    # default: the safe loader refuses, nothing runs
    with pytest.raises(RuntimeError, match='not allow-listed(.|\n)*mkdir'):
        hub.load_checkpoint_verified(path)
    assert not os.path.exists(marker)
    # opt-in with a wrong digest: refused before unpickling
    bad = ('0' if digest[0] != '0' else '1') + digest[1:]
    with pytest.raises(hub.ChecksumError):
        hub.load_checkpoint_verified(path, sha256=bad, allow_pickle=True)
    assert not os.path.exists(marker)
    # opt-in: the object is unpickled, i.e. its code runs
    ck = hub.load_checkpoint_verified(path, sha256=digest,
                                      allow_pickle=True)
    assert torch.equal(ck['state_dict']['w'], torch.ones(2))
    assert os.path.isdir(marker)


def test_interclr_release_url_hash_is_enforced(ckpt_file, tmp_path,
                                               monkeypatch):
    """The InterCLR checkpoint of MMSelfSup 0.x's model zoo ends in
    -38f8fdaf: a download with other bytes is rejected and not cached."""
    url = ('https://download.openmmlab.com/mmselfsup/interclr/'
           'interclr-moco_resnet50_8xb32-coslr-200e_in1k_20221206-'
           '38f8fdaf.pth')
    src, digest = ckpt_file
    if digest.startswith('38f8fdaf'):  # pragma: no cover
        pytest.skip('collision with the published digest')
    seen = []

    def fake_download(u, dst, hash_prefix=None, progress=True):
        # torch.hub.download_url_to_file's contract: check, then move
        seen.append(hash_prefix)
        with open(src, 'rb') as f:
            data = f.read()
        if hash_prefix and not hashlib.sha256(data).hexdigest().startswith(
                hash_prefix):
            raise RuntimeError(f'invalid hash value (expected '
                               f'"{hash_prefix}")')
        shutil.copy(src, dst)

    monkeypatch.setattr(torch.hub, 'download_url_to_file', fake_download)
    cache = str(tmp_path / 'cache')
    with pytest.raises(hub.ChecksumError, match='38f8fdaf'):
        hub.load_checkpoint_verified(url, model_dir=cache)
    assert seen == ['38f8fdaf']
    assert not os.path.exists(hub.cached_path(url, cache))
    # a tampered file already in the cache is caught as well
    os.makedirs(cache, exist_ok=True)
    shutil.copy(src, hub.cached_path(url, cache))
    with pytest.raises(hub.ChecksumError, match='38f8fdaf'):
        hub.load_checkpoint_verified(url, model_dir=cache)
