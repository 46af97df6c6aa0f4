"""Real image datasets for training and evaluating HQA (never downloaded).

* MNIST from a root holding ``MNIST/raw/*-ubyte.gz`` (torchvision's layout), resized
  28 -> 32 with bilinear antialiasing as in the paper, pixels in [0, 1].
* Image folders: CelebA-style aligned faces (center crop to a square, resize) and
  generic folders (random crops for larger images).

Small datasets are returned as one tensor, so the training loop can hold them on
its device and index batches without any per-sample work.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch
import torch.nn.functional as F

from torch import Tensor

__all__ = [
    "MNIST_FILES",
    "TensorImages",
    "cache_dir",
    "load_mnist",
    "sample_digits",
]

MNIST_FILES = {
    True: ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    False: ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


@dataclass
class TensorImages:
    """A dataset held as tensors.

    Attributes:
        images: float images (N, C, H, W) in [0, 1].
        labels: integer labels (N,), or None.
    """

    images: Tensor
    labels: Tensor | None = None

    def __len__(self) -> int:
        return self.images.shape[0]

    def to(self, device: torch.device | str) -> TensorImages:
        labels = None if self.labels is None else self.labels.to(device)
        return TensorImages(self.images.to(device), labels)


def load_mnist(root: str | Path, train: bool = True, size: int = 32) -> TensorImages:
    """MNIST as a (N, 1, size, size) float tensor in [0, 1] plus labels.

    Args:
        root: folder that holds ``MNIST/raw/`` (torchvision's layout), e.g.
            ``../shared/data``.
        train: the 60k training split, else the 10k test split.
        size: output resolution; 28 -> 32 uses bilinear interpolation with
            antialiasing, as the paper rescales MNIST to 32x32.

    Raises:
        FileNotFoundError: the raw files are missing (nothing is downloaded).
    """
    from torchvision.datasets import MNIST

    dataset = MNIST(str(_mnist_root(Path(root))), train=train, download=False)
    images = dataset.data.unsqueeze(1).float().div_(255.0)
    if size != images.shape[-1]:
        images = F.interpolate(
            images,
            size=(size, size),
            mode="bilinear",
            antialias=True,
            align_corners=False,
        ).clamp_(0.0, 1.0)
    return TensorImages(images.contiguous(), dataset.targets.clone())


def sample_digits(size: int = 32) -> TensorImages:
    """The 100 MNIST test digits embedded in the package (see ``assets/README.md``).

    The first 100 digits of the MNIST test split, resized like :func:`load_mnist`.
    """
    import numpy as np

    with resources.as_file(
        resources.files(__package__) / "assets" / "mnist_test_100.npz"
    ) as p:
        with np.load(p, allow_pickle=False) as data:
            images = torch.from_numpy(data["images"]).unsqueeze(1).float().div_(255.0)
            labels = torch.from_numpy(data["labels"]).long()
    return TensorImages(_resize(images, size), labels)


def _resize(images: Tensor, size: int) -> Tensor:
    if size == images.shape[-1]:
        return images.contiguous()
    return (
        F.interpolate(
            images,
            size=(size, size),
            mode="bilinear",
            antialias=True,
            align_corners=False,
        )
        .clamp_(0.0, 1.0)
        .contiguous()
    )


def cache_dir() -> Path:
    """Where decompressed copies of datasets go (``$COMPRESSAI_HQA_CACHE``)."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return Path(os.environ.get("COMPRESSAI_HQA_CACHE", default / "compressai_hqa"))


def _mnist_root(root: Path) -> Path:
    """A root that torchvision's ``MNIST(download=False)`` accepts.

    torchvision reads the *decompressed* IDX files. When ``root`` holds only the
    original ``.gz`` files (e.g. a read-only data folder), all four are checked
    against torchvision's MD5s and decompressed once into :func:`cache_dir`.
    """
    from torchvision.datasets import MNIST

    raw = root / "MNIST" / "raw"
    names = [*MNIST_FILES[True], *MNIST_FILES[False]]  # torchvision checks all four
    if all((raw / n.removesuffix(".gz")).is_file() for n in names):
        return root
    missing = [n for n in names if not (raw / n).is_file()]
    if missing:
        raise FileNotFoundError(
            f"MNIST not found: expected {', '.join(missing)} in {raw} "
            "(torchvision layout <root>/MNIST/raw/; nothing is downloaded)"
        )
    md5s = dict(MNIST.resources)
    digest = hashlib.md5(usedforsecurity=False)
    for n in names:
        digest.update(md5s[n].encode())
    cached = cache_dir() / "mnist" / digest.hexdigest()[:16]
    cached_raw = cached / "MNIST" / "raw"
    for n in names:
        target = cached_raw / n.removesuffix(".gz")
        if target.is_file():
            continue
        data = (raw / n).read_bytes()
        if hashlib.md5(data, usedforsecurity=False).hexdigest() != md5s[n]:
            raise ValueError(
                f"{raw / n} is corrupt: its MD5 differs from torchvision's"
            )
        cached_raw.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=cached_raw, delete=False) as tmp:
            tmp.write(gzip.decompress(data))
        os.replace(tmp.name, target)
    return cached
