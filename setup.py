from pathlib import Path

from setuptools import find_packages, setup

version = {}
exec(Path('petl_vision/version.py').read_text(), version)

setup(
    name='petl_vision',
    version=version['__version__'],
    description='Parameter-efficient transfer learning (U-Tuning) for timm vision transformers, trained with mmengine',
    long_description=Path('README.md').read_text(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['petl_vision', 'petl_vision.*']),
    python_requires='>=3.9',
    install_requires=[
        'torch>=2.1',
        'torchvision',
        'timm>=1.0.9',
        'mmengine>=0.10.4',
        'fvcore',
        'einops',
        'safetensors',
        'matplotlib',
        'rich',
    ],
    extras_require={
        'test': ['pytest', 'peft', 'scikit-learn'],
        'points': ['h5py'],
    },
)
