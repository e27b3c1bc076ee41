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
    # Ranges are what mmdet 3.3 accepts and what we verified (see README "Versions").
    install_requires=[
        'torch>=2.0,<2.15',
        'torchvision>=0.15,<0.30',
        'mmengine>=0.10.0,<0.11',
        'mmcv>=2.1.0,<2.2.0',
        'mmdet>=3.3.0,<3.4',
        'numpy>=1.23',
        'pycocotools>=2.0.6',
        'matplotlib>=3.5',
    ],
    extras_require={'tests': ['pytest>=7']},
    license='Apache-2.0',
)
