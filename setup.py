import os.path as osp

from setuptools import find_packages, setup


def get_version():
    scope = {}
    with open(osp.join('mmssl_ext', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


def parse_requirements(fname):
    reqs = []
    with open(fname) as f:
        for line in f:
            line = line.split('#')[0].strip()
            if line and not line.startswith('-'):
                reqs.append(line)
    return reqs


setup(
    name='mmssl_ext',
    version=get_version(),
    license='Apache License 2.0',
    description='InterCLR, Invariance Propagation, CLD, BSIM and '
    'ContrastiveCrop for the OpenMMLab self-supervised stack',
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('configs', 'tools', 'tests', 'benchmarks')),
    python_requires='>=3.10',
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
