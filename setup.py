import os
import os.path as osp
import shutil
import sys

from setuptools import find_packages, setup

ROOT = osp.dirname(osp.abspath(__file__))

#: what ``mim`` and mmengine's ``mmssl_ext::`` config prefix look for in the
#: installed package (``mmssl_ext/.mim/``), the OpenMMLab layout
MIM_FILES = ('configs', 'tools', 'model-index.yml')
MIM_DIR = osp.join(ROOT, 'mmssl_ext', '.mim')


def get_version():
    scope = {}
    with open(osp.join(ROOT, 'mmssl_ext', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


def parse_requirements(fname):
    reqs = []
    with open(osp.join(ROOT, fname)) as f:
        for line in f:
            line = line.split('#')[0].strip()
            if line and not line.startswith('-'):
                reqs.append(line)
    return reqs


def _mim_mode():
    """``'link'`` for an editable install (the clone's files stay the
    source), ``'copy'`` when a wheel or an sdist is built, None otherwise
    (e.g. ``setup.py --version``)."""
    commands = set(sys.argv[1:])
    if commands & {'develop', 'editable_wheel'}:
        return 'link'
    if commands & {'bdist_wheel', 'sdist', 'build', 'build_py', 'egg_info',
                   'dist_info', 'install'}:
        return 'copy'
    return None


def add_mim_extension():
    """Put ``configs/``, ``tools/`` and ``model-index.yml`` into
    ``mmssl_ext/.mim/`` (relative symlinks for an editable install, copies
    otherwise), so that an installed package resolves ``mmssl_ext::``
    bases and ``mim search`` / ``mim download`` / ``mim train`` find its
    model index, configs and tools."""
    mode = _mim_mode()
    if mode is None:
        return
    if mode == 'link' and os.name == 'nt':  # no symlinks without privileges
        mode = 'copy'
    os.makedirs(MIM_DIR, exist_ok=True)
    ignore = shutil.ignore_patterns('__pycache__', '*.pyc', 'wheels')
    for name in MIM_FILES:
        src = osp.join(ROOT, name)
        dst = osp.join(MIM_DIR, name)
        if osp.islink(dst) or osp.isfile(dst):
            os.remove(dst)
        elif osp.isdir(dst):
            shutil.rmtree(dst)
        if mode == 'link':
            os.symlink(osp.relpath(src, MIM_DIR), dst)
        elif osp.isdir(src):
            shutil.copytree(src, dst, ignore=ignore)
        else:
            shutil.copyfile(src, dst)


def mim_package_data():
    """``mmssl_ext/.mim/**`` entries of ``package_data``."""
    patterns = ['.mim/model-index.yml']
    for name in ('configs', 'tools'):
        for dirpath, dirnames, filenames in os.walk(
                osp.join(ROOT, name)):
            dirnames[:] = [d for d in dirnames
                           if d not in ('__pycache__', 'wheels')]
            rel = osp.relpath(dirpath, ROOT)
            for ext in ('py', 'sh', 'yml', 'md', 'txt'):
                if any(f.endswith('.' + ext) for f in filenames):
                    patterns.append(f'.mim/{rel}/*.{ext}')
    return sorted(set(patterns))


add_mim_extension()

with open(osp.join(ROOT, 'README.md'), encoding='utf-8') as f:
    LONG_DESCRIPTION = f.read()

setup(
    name='mmssl_ext',
    version=get_version(),
    license='Apache License 2.0',
    description='InterCLR, Invariance Propagation, CLD, BSIM and '
    'ContrastiveCrop for the OpenMMLab self-supervised stack',
    long_description=LONG_DESCRIPTION,
    long_description_content_type='text/markdown',
    author='The mmssl_ext Authors',
    keywords='self-supervised learning, contrastive learning, OpenMMLab, '
    'MMPretrain, MMEngine, InterCLR, CLD, BSIM, ContrastiveCrop',
    # no `url` yet: the project has no public home; it is added when the
    # repository is published (docs/changelog.md)
    classifiers=[
        'Development Status :: 3 - Alpha',
        'Intended Audience :: Science/Research',
        'License :: OSI Approved :: Apache Software License',
        'Operating System :: POSIX :: Linux',
        'Programming Language :: Python :: 3',
        'Programming Language :: Python :: 3.10',
        'Programming Language :: Python :: 3.11',
        'Programming Language :: Python :: 3.12',
        'Topic :: Scientific/Engineering :: Artificial Intelligence',
        'Topic :: Scientific/Engineering :: Image Recognition',
    ],
    packages=find_packages(
        exclude=('configs', 'tools', 'tests', 'tests.*', 'benchmarks')),
    package_data={'mmssl_ext': mim_package_data()},
    # the range tools/setup/setup.sh accepts; tested on 3.11
    python_requires='>=3.10,<3.13',
    install_requires=parse_requirements('requirements/runtime.txt'),
    extras_require={
        'tests': parse_requirements('requirements/tests.txt'),
        'optional': parse_requirements('requirements/optional.txt'),
        'faiss': ['faiss-cpu'],
        'gpu': parse_requirements('requirements/gpu.txt'),
        'all': parse_requirements('requirements/tests.txt') +
        parse_requirements('requirements/optional.txt') + ['faiss-cpu'],
    },
    zip_safe=False,
)
