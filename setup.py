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
    package_data={'petl_vision.demo': ['*.pth', 'README.md']},
    python_requires='>=3.11',
    install_requires=[
        'torch>=2.5',  # torch.serialization.safe_globals (safe resume)
        'torchvision',
        'timm>=1.0.9,<1.1',  # attend() follows timm 1.0.x Attention (tests/backbones/test_attend.py; CI: 1.0.31)
        'mmengine>=0.10.4',
        'fvcore',
        'einops',
        'safetensors',
        'matplotlib',
        'rich',
        'scikit-learn',  # the quick start's digits images
        'scipy',  # .mat annotations (NYUD-v2, PASCAL-Context, Flowers, Dogs, Cars)
        'psutil',  # the benchmark's peak-memory child process
        'pyyaml',  # single-task baseline files of the dense metric
        'huggingface_hub',  # the zoo's hub entries (also a dependency of timm)
        'filelock',  # the zoo lock and adapter-library locks, on any platform
    ],
    extras_require={
        # the docs packages are in `test` too: tests/docs/test_site.py builds the site (CI installs .[test,points])
        'test': ['pytest', 'peft', 'scikit-learn', 'h5py', 'scipy',
                 'mkdocs>=1.6,<2', 'mkdocs-material>=9.5', 'mkdocstrings[python]>=0.26'],
        'points': ['h5py'],
        'docs': ['mkdocs>=1.6,<2', 'mkdocs-material>=9.5', 'mkdocstrings[python]>=0.26'],  # mkdocs build --strict
    },
)
