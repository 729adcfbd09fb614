"""The package as a user installs it: a wheel that ships configs, tools and
the model index in ``mmssl_ext/.mim/`` (the OpenMMLab layout), a config
outside the repository that inherits ``mmssl_ext::`` and trains from the
installed wheel, and README's install block that is what ``make setup``
runs."""
import ast
import glob
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
import zipfile

import pytest
import torch
import yaml

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
#: what a wheel is built from (tracked sources; no caches, no .mim)
SOURCES = ('mmssl_ext', 'configs', 'tools', 'requirements', 'setup.py',
           'pyproject.toml', 'MANIFEST.in', 'README.md', 'LICENSE',
           'CITATION.cff', 'model-index.yml')
IGNORE = shutil.ignore_patterns('__pycache__', '*.pyc', '.mim', 'wheels',
                                '*.egg-info')


@pytest.fixture(scope='module')
def wheel(tmp_path_factory):
    """A wheel built from a copy of the sources (the work tree is left as it
    is), as ``pip wheel .`` builds it."""
    src = tmp_path_factory.mktemp('src')
    for name in SOURCES:
        path = osp.join(ROOT, name)
        if osp.isdir(path):
            shutil.copytree(path, src / name, ignore=IGNORE)
        else:
            shutil.copy(path, src / name)
    out = tmp_path_factory.mktemp('dist')
    proc = subprocess.run(
        [sys.executable, '-m', 'pip', 'wheel', '--no-deps',
         '--no-build-isolation', '--no-index', '-q', '-w', str(out),
         str(src)],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (whl, ) = glob.glob(str(out / 'mmssl_ext-*.whl'))
    return whl


@pytest.fixture(scope='module')
def installed(wheel, tmp_path_factory):
    """The wheel installed (no dependencies) into a folder put first on
    ``sys.path`` of the processes below: the stack of this environment, this
    package from the wheel."""
    target = tmp_path_factory.mktemp('site')
    proc = subprocess.run(
        [sys.executable, '-m', 'pip', 'install', '--no-deps', '--no-index',
         '-q', '--target', str(target), wheel],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return target


def _tracked(folder):
    out = set()
    for dirpath, dirnames, filenames in os.walk(osp.join(ROOT, folder)):
        dirnames[:] = [d for d in dirnames if d not in ('__pycache__',
                                                        'wheels')]
        for f in filenames:
            if f.endswith(('.py', '.sh', '.yml', '.md', '.txt')):
                out.add(osp.relpath(osp.join(dirpath, f), ROOT))
    return out


def test_wheel_ships_configs_tools_and_model_index(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        meta = z.read(next(n for n in names
                           if n.endswith('.dist-info/METADATA'))).decode()
    shipped = {n[len('mmssl_ext/.mim/'):] for n in names
               if n.startswith('mmssl_ext/.mim/')}
    assert 'model-index.yml' in shipped
    for folder in ('configs', 'tools'):
        missing = _tracked(folder) - shipped
        assert not missing, sorted(missing)[:10]
    assert not any('__pycache__' in n for n in names)
    # metadata a package index shows
    from packaging.specifiers import SpecifierSet
    (requires, ) = re.findall(r'^Requires-Python: (.+)$', meta, re.M)
    assert SpecifierSet(requires) == SpecifierSet('>=3.10,<3.13')
    assert 'Classifier: Programming Language :: Python :: 3.11' in meta
    assert 'Description-Content-Type: text/markdown' in meta
    assert '# mmssl_ext' in meta  # README as the long description


OUTSIDE_CONFIG = """\
# a user's config, outside the repository
_base_ = ['mmssl_ext::interclr/interclr-moco_resnet18-cifar_1xb64-coslr-20e_digits.py']
# one iteration, no evaluation, quiet
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=1)
val_cfg = None
val_dataloader = None
val_evaluator = None
param_scheduler = []
train_dataloader = dict(num_workers=0, persistent_workers=False)
default_hooks = dict(checkpoint=dict(interval=1, by_epoch=False),
                     logger=dict(interval=1))
"""


def test_outside_config_inherits_mmssl_ext_and_trains_from_wheel(
        installed, tmp_path):
    """A config in a folder of its own inherits
    ``mmssl_ext::interclr/...`` through the installed package's
    ``.mim/configs`` and trains one iteration with the installed
    ``.mim/tools/train.py`` (what ``mim train mmssl_ext`` runs); modules,
    configs and tools come from the wheel, not from this clone."""
    (tmp_path / 'my_interclr.py').write_text(OUTSIDE_CONFIG)
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    env.update(PYTHONPATH=str(installed), OMP_NUM_THREADS='1')
    where = subprocess.run(
        [sys.executable, '-c', 'import mmssl_ext; print(mmssl_ext.__file__)'],
        cwd=str(tmp_path), env=env, capture_output=True, text=True,
        timeout=300)
    assert where.stdout.strip() == str(installed / 'mmssl_ext' /
                                       '__init__.py'), where.stderr[-2000:]
    train = installed / 'mmssl_ext' / '.mim' / 'tools' / 'train.py'
    proc = subprocess.run(
        [sys.executable, str(train), 'my_interclr.py', '--work-dir', 'work'],
        cwd=str(tmp_path), env=env, capture_output=True, text=True,
        timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    ckpt = torch.load(str(tmp_path / 'work' / 'iter_1.pth'),
                      map_location='cpu')
    assert ckpt['meta']['iter'] == 1
    # InterCLR's own state (the inherited recipe's ClusterMemory, 4,000
    # digits) is in the trained model
    banks = [v for k, v in ckpt['state_dict'].items() if 'memory' in k]
    assert any(v.dim() and v.shape[0] == 4000 for v in banks)


def test_installed_model_index_is_complete_for_mim(installed):
    """What ``mim search`` / ``mim download`` / mmengine read from the
    installed package: the index, every metafile, every row's config."""
    from modelindex.load_model_index import load
    mim = installed / 'mmssl_ext' / '.mim'
    index = load(str(mim / 'model-index.yml'))
    with open(osp.join(ROOT, 'model-index.yml')) as f:
        imports = yaml.safe_load(f)['Import']
    rows = []
    for path in imports:
        with open(osp.join(ROOT, path)) as f:
            rows += yaml.safe_load(f)['Models']
    assert {m.name for m in index.models} == {r['Name'] for r in rows}
    for model in index.models:
        if model.config:
            assert (mim / model.config).is_file(), model.config
    # mmengine resolves `mmssl_ext::X` through the same files
    names = {r['Config'].partition('/')[2] for r in rows if 'Config' in r}
    assert 'interclr/interclr-moco_resnet50_8xb32-coslr-200e_in1k.py' in names


def _block(text: str, heading: str) -> str:
    section = text.split(heading, 1)[1]
    return section.split('```bash', 1)[1].split('```', 1)[0]


def _setup_sh() -> str:
    with open(osp.join(ROOT, 'tools', 'setup', 'setup.sh')) as f:
        return f.read()


def test_readme_install_block_is_what_make_setup_runs():
    with open(osp.join(ROOT, 'README.md'), encoding='utf-8') as f:
        readme = f.read()
    block = _block(readme, '## Install into your own environment')
    sh = _setup_sh()
    with open(osp.join(ROOT, 'requirements', 'pinned.txt')) as f:
        pins = dict(re.findall(r'^(torch|torchvision)==(\S+)', f.read(),
                               re.M))
    # torch pinned as in requirements/pinned.txt, which setup.sh installs
    assert f"pip install torch=={pins['torch']} " \
        f"torchvision=={pins['torchvision']}" in block
    assert "grep -E '^torch(vision)?==' requirements/pinned.txt" in sh
    # MMCV: the version, ops, C++20 wrapper, no build isolation, and the
    # wheel cache of setup.sh
    mmcv = re.search(r'^MMCV_VER=(\S+)', sh, re.M).group(1)
    for token in (f'mmcv=={mmcv}', 'MMCV_WITH_OPS=1',
                  'CXX="$PWD/tools/setup/cxx20.sh"', '--no-build-isolation',
                  f"~/.cache/mmssl_ext/wheels/torch{pins['torch']}"):
        assert token in block, token
    assert 'MMCV_WITH_OPS=1' in sh and 'tools/setup/cxx20.sh' in sh
    assert '$HOME/.cache/mmssl_ext/wheels/torch$TORCH_VER' in sh
    with open(osp.join(ROOT, 'tools', 'setup', 'cxx20.sh')) as f:
        assert '-std=c++20' in f.read()
    # the requirement files setup.sh installs from
    for req in ('requirements/build.txt', 'requirements/pinned.txt'):
        assert f'-r {req}' in block and req in sh
    assert 'pip install --no-build-isolation --no-deps .' in block
    # the Python range: README, setup.sh's check, setup.py
    assert 'Python 3.10 to 3.12' in readme
    assert '(3, 10) <= sys.version_info[:2] <= (3, 12)' in sh
    with open(osp.join(ROOT, 'setup.py')) as f:
        tree = ast.parse(f.read())
    kwargs = {k.arg: k.value for node in ast.walk(tree)
              if isinstance(node, ast.Call)
              and getattr(node.func, 'id', '') == 'setup'
              for k in node.keywords}
    assert ast.literal_eval(kwargs['python_requires']) == '>=3.10,<3.13'
    # the first set-up's cost is stated, from the benchmarks page
    m = re.search(r'The first\s+set-up costs ([^(]+)\(', readme)
    assert m and re.search(r'\d+ min', m.group(1)) and 'GB' in m.group(1)
    with open(osp.join(ROOT, 'docs', 'benchmarks.md')) as f:
        bench = f.read()
    for number in re.findall(r'[\d.]+ (?:min|GB)', m.group(1)):
        assert number in bench, number
