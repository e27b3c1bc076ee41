"""Install ktan-det: KTAN distillation for MMDetection 3.x."""
import os.path as osp

from setuptools import find_packages, setup


def read_version() -> str:
    scope: dict = {}
    with open(osp.join(osp.dirname(__file__), 'ktan_det', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


setup(
    name='ktan-det',
    version=read_version(),
    description='Knowledge Transfer Adversarial Network (KTAN) distillation '
    'for MMDetection 3.x detectors',
    long_description=open('README.md').read() if osp.exists('README.md') else '',
    long_description_content_type='text/markdown',
    packages=find_packages(include=['ktan_det', 'ktan_det.*']),
    python_requires='>=3.9',
    # Verified: torch 2.14.1, torchvision 0.29.1, mmengine 0.10.7, mmcv 2.1.0, mmdet 3.3.0,
    # numpy 1.26.4 (README "Versions"). Lower bounds: safe-loading allow-lists with explicit
    # names need torch 2.6; mmdet 3.3 needs mmcv < 2.2; mmdet 3.3 and mmcv 2.1 predate numpy 2.
    install_requires=[
        'torch>=2.6,<2.15',
        'torchvision>=0.21,<0.30',
        'mmengine>=0.10.0,<0.11',
        'mmcv>=2.1.0,<2.2.0',
        'mmdet>=3.3.0,<3.4',
        'numpy>=1.23,<2',
        'pycocotools>=2.0.6',
        'matplotlib>=3.5',
    ],
    extras_require={'tests': ['pytest>=7']},
    license='Apache-2.0',
)
