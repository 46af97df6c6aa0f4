"""Real image datasets for training and evaluating HQA (never downloaded).

* MNIST from a root holding ``MNIST/raw/*-ubyte.gz`` (torchvision's layout), resized
  28 -> 32 with bilinear antialiasing as in the paper, pixels in [0, 1].
* Image folders: CelebA-style aligned faces (center crop to a square, resize) and
  generic folders (random crops for larger images).

Small datasets are returned as one tensor, so the training loop can hold them on
its device and index batches without any per-sample work. Single image files are
read by :mod:`compressai_hqa.image_files` (its names are exported here too).
"""

from __future__ import annotations

import gzip
import hashlib
import math
import zlib

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from torch import Tensor

from compressai_hqa.files import atomic_write, cache_dir
from compressai_hqa.image_files import (
    COLOR_MODES,
    IMG_EXTENSIONS,
    list_images,
    load_image,
    read_image,
)

__all__ = [
    "COLOR_MODES",
    "DATASET_KINDS",
    "IMG_EXTENSIONS",
    "MNIST_FILES",
    "RandomCropFolder",
    "TensorImages",
    "list_images",
    "load_face_folder",
    "load_image",
    "load_mnist",
    "read_image",
    "resize_images",
    "sample_digits",
]

#: Dataset transforms, how a model family's images are read: ``mnist`` (a root
#: holding ``MNIST/raw``; digits resized to the config's size), ``faces`` (a folder
#: of aligned faces: centre crop to a square, resize; in memory) and ``folder``
#: (random crops of the config's size, through a DataLoader).
DATASET_KINDS = ("mnist", "faces", "folder")

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
            ``../shared/data``: the four IDX files, decompressed or ``.gz``.
        train: the training split (60k digits in the original files), else the
            test split (10k).
        size: output resolution; 28 -> 32 uses bilinear interpolation with
            antialiasing, as the paper rescales MNIST to 32x32.

    Raises:
        FileNotFoundError: the raw files are missing (nothing is downloaded).
        ValueError: a ``.gz`` file is corrupt, or a split has more images than
            labels or the reverse.
    """
    from torchvision.datasets import MNIST

    dataset = MNIST(str(_mnist_root(Path(root))), train=train, download=False)
    images = dataset.data.unsqueeze(1).float().div_(255.0)
    return TensorImages(resize_images(images, size), dataset.targets.clone())


def sample_digits(size: int = 32) -> TensorImages:
    """The 100 MNIST test digits embedded in the package (see ``assets/README.md``).

    The first 100 digits of the MNIST test split, resized like :func:`load_mnist`.
    """

    with resources.as_file(
        resources.files(__package__) / "assets" / "mnist_test_100.npz"
    ) as p:
        with np.load(p, allow_pickle=False) as data:
            images = torch.from_numpy(data["images"]).unsqueeze(1).float().div_(255.0)
            labels = torch.from_numpy(data["labels"]).long()
    return TensorImages(resize_images(images, size), labels)


def resize_images(images: Tensor, size: int) -> Tensor:
    """Square images (N, C, s, s) resized to ``size`` as MNIST is (28 -> 32).

    Bilinear with antialiasing, clamped to [0, 1]; unchanged if already ``size``.
    """
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


def _mnist_root(root: Path) -> Path:
    """A root that torchvision's ``MNIST(download=False)`` accepts.

    torchvision reads the *decompressed* IDX files. When ``root`` holds only the
    ``.gz`` files (e.g. a read-only data folder), all four are checked (an intact
    gzip stream holding a well-formed unsigned-byte IDX array, as many labels as
    images per split) and decompressed once into the cache
    (:func:`compressai_hqa.files.cache_dir`), in a folder
    named after their contents. Any IDX files in this layout are accepted: the
    original MNIST files or a subset of them (as the tests ship).
    """
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
    blobs = {n: (raw / n).read_bytes() for n in names}
    digest = hashlib.sha256()
    for n in names:
        digest.update(hashlib.sha256(blobs[n]).digest())
    cached = cache_dir() / "mnist" / digest.hexdigest()[:16]
    cached_raw = cached / "MNIST" / "raw"
    targets = {n: cached_raw / n.removesuffix(".gz") for n in names}
    if all(t.is_file() for t in targets.values()):
        return cached
    data = {n: _idx_payload(raw / n, blobs[n]) for n in names}
    for images, labels in MNIST_FILES.values():
        (n_images, *_), (n_labels,) = data[images][0], data[labels][0]
        if n_images != n_labels:
            raise ValueError(
                f"{raw / images} holds {n_images} images but {raw / labels} "
                f"{n_labels} labels"
            )
    for n, (_, payload) in data.items():
        atomic_write(targets[n], payload)
    return cached


def _idx_payload(path: Path, blob: bytes) -> tuple[tuple[int, ...], bytes]:
    """The shape and decompressed bytes of a gzip IDX file of MNIST (uint8).

    Raises:
        ValueError: the gzip stream is damaged (its CRC or length differs) or does
            not hold an unsigned-byte IDX array of the file's kind (3-d images or
            1-d labels) and size.
    """
    try:
        data = gzip.decompress(blob)
    except (OSError, EOFError, zlib.error) as err:
        raise ValueError(f"{path} is corrupt: {err}") from None
    ndim = 3 if "-images-" in path.name else 1
    if len(data) < 4 + 4 * ndim or data[:4] != bytes([0, 0, 0x08, ndim]):
        raise ValueError(
            f"{path} is corrupt: not an unsigned-byte IDX file of {ndim} dimensions"
        )
    shape = tuple(
        int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)
    )
    if len(data) != 4 + 4 * ndim + math.prod(shape):
        raise ValueError(
            f"{path} is corrupt: {len(data) - 4 - 4 * ndim} bytes for shape {shape}"
        )
    return shape, data


def load_face_folder(
    root: str | Path, size: int = 64, channels: int = 3, limit: int | None = None
) -> TensorImages:
    """Aligned faces (CelebA style): center crop to a square, resize to ``size``.

    For CelebA's 89x109 aligned faces: crop 89x89, resize to 64x64 (bilinear,
    antialiased). Returned in memory as floats in [0, 1], no labels.

    Args:
        root: folder of images (searched recursively).
        size: output resolution.
        channels: 3 (RGB) or 1 (grayscale).
        limit: use only the first ``limit`` files (sorted by name).
    """
    from torchvision.transforms import functional as TF

    files = list_images(root)[:limit]
    out = torch.empty(len(files), channels, size, size, dtype=torch.uint8)
    for i, path in enumerate(files):
        img = read_image(path, _mode(channels))
        side = min(img.shape[-2:])
        img = TF.center_crop(img, [side, side])
        out[i] = TF.resize(img, [size, size], antialias=True)
    return TensorImages(out.float().div_(255.0))


class RandomCropFolder(torch.utils.data.Dataset):
    """Random ``size`` x ``size`` crops of the images of a folder (a DataLoader path).

    For folders too large to hold in memory, or images larger than the training
    resolution. Indexed by ``i`` or by ``(i, epoch)``: the crop is drawn from a
    generator seeded with ``(seed, epoch, i)``, so the data do not depend on
    worker processes and a resumed run sees the same crops. Smaller images are
    upscaled so that their short side is ``size``.

    Args:
        root: folder of images (searched recursively).
        size: crop size.
        channels: 3 (RGB) or 1 (grayscale).
        seed: base seed of the crop positions.
    """

    def __init__(
        self, root: str | Path, size: int, channels: int = 3, seed: int = 0
    ) -> None:
        self.files = list_images(root)
        self.size = size
        self.channels = channels
        self.seed = seed

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, key: int | tuple[int, int]) -> Tensor:
        from torchvision.transforms import functional as TF

        index, epoch = key if isinstance(key, tuple) else (key, 0)

        img = read_image(self.files[index], _mode(self.channels))
        h, w = img.shape[-2:]
        if min(h, w) < self.size:
            scale = self.size / min(h, w)
            h, w = max(self.size, round(h * scale)), max(self.size, round(w * scale))
            img = TF.resize(img, [h, w], antialias=True)
        g = torch.Generator().manual_seed(hash((self.seed, epoch, index)) % 2**63)
        top = int(torch.randint(0, h - self.size + 1, (1,), generator=g))
        left = int(torch.randint(0, w - self.size + 1, (1,), generator=g))
        crop = img[:, top : top + self.size, left : left + self.size]
        return crop.float().div_(255.0)


def _mode(channels: int) -> str:
    """The PIL mode of images of 1 or 3 channels."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    return "L" if channels == 1 else "RGB"
