"""Evaluation images: a folder, or a model family's data, with their own channels.

CompressAI's ``eval_model`` opens every image as RGB, so a grayscale image silently
becomes three identical channels. Here images keep their channel count (PIL mode
``L``: 1 channel, ``RGB``: 3), and a mismatch with the model is an error unless a
conversion is asked for with ``color_mode``. ``FAMILY:ROOT`` reads ``ROOT`` with
the dataset transform of a model family (:mod:`compressai_hqa.families`):
``mnist:ROOT`` is the MNIST test split, ``celeba64:ROOT`` a folder of faces
cropped and resized to 64x64.
"""

from __future__ import annotations

import hashlib

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from torch import Tensor

from compressai_hqa.datasets import (
    COLOR_MODES,
    list_images,
    load_face_folder,
    load_image,
    load_mnist,
)
from compressai_hqa.families import FAMILIES, Family

__all__ = ["EvalImages", "load_eval_images"]


@dataclass(frozen=True)
class EvalImages:
    """A set of evaluation images in [0, 1].

    Attributes:
        name: ``"mnist-test"`` or the folder.
        images: (N, C, H, W) when all images have one size, else N tensors (C, H, W).
        ids: one relative path per image, without suffix (``"mnist-test/00042"``,
            ``"sub/kodim01"``), for per-image results.
        labels: class labels (MNIST), or None.
    """

    name: str
    images: Tensor | tuple[Tensor, ...]
    ids: tuple[str, ...]
    labels: Tensor | None = None

    def __len__(self) -> int:
        return len(self.images)

    @property
    def is_mnist(self) -> bool:
        return self.name == "mnist-test"

    @property
    def channels(self) -> int:
        return int(self.images[0].shape[0])

    @property
    def stacked(self) -> bool:
        """Whether all images have one size (so they can be batched)."""
        return isinstance(self.images, Tensor)

    def min_side(self) -> int:
        return min(min(img.shape[-2:]) for img in self.images)

    def sizes(self) -> set[tuple[int, int]]:
        if isinstance(self.images, Tensor):
            return {tuple(self.images.shape[-2:])}
        return {tuple(img.shape[-2:]) for img in self.images}

    def subset(self, count: int) -> EvalImages:
        """The first ``count`` images."""
        labels = None if self.labels is None else self.labels[:count]
        return EvalImages(self.name, self.images[:count], self.ids[:count], labels)

    def batches(self, batch_size: int) -> Iterator[tuple[int, Tensor]]:
        """(index of the first image, images (B, C, H, W)); single images if sizes
        differ."""
        step = batch_size if self.stacked else 1
        for start in range(0, len(self), step):
            if isinstance(self.images, Tensor):
                yield start, self.images[start : start + step]
            else:
                yield start, self.images[start].unsqueeze(0)

    def fingerprint(self, count: int | None = None) -> str:
        """SHA-256 of the first ``count`` images' pixels (identifies the data)."""
        digest = hashlib.sha256()
        for img in self.images[: len(self) if count is None else count]:
            digest.update(str(tuple(img.shape)).encode())
            digest.update(img.contiguous().numpy().tobytes())
        return digest.hexdigest()


def load_eval_images(spec: str, color_mode: str | None = None) -> EvalImages:
    """Images from a folder, or ``FAMILY:ROOT`` (a model family's transform).

    Args:
        spec: a folder of images (searched recursively), or ``FAMILY:ROOT`` for
            ``ROOT`` read as model family ``FAMILY`` reads its data: ``mnist``
            (``mnist:ROOT``, ``ROOT/MNIST/raw/`` holding the IDX files: the 10k
            test split at the family's size), ``faces`` (centre crop and resize
            of every image) or ``folder`` (the images as they are).
        color_mode: convert every image to PIL mode ``"L"`` or ``"RGB"``; by
            default images keep their own channels (palette and 1-bit images are
            decoded, alpha is dropped) and all must have the same number.

    Raises:
        FileNotFoundError: no such data.
        ValueError: unsupported or mixed image modes.
    """
    if color_mode is not None and color_mode not in COLOR_MODES:
        raise ValueError(f"color_mode must be one of {COLOR_MODES}, got {color_mode!r}")
    name, colon, root = spec.partition(":")
    family = FAMILIES.get(name) if colon else None
    if family is not None and family.dataset != "folder":
        return _family_images(family, root, color_mode)
    folder = Path(root if family is not None else spec)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"dataset {spec!r} is neither FAMILY:ROOT (e.g. mnist:ROOT) nor a "
            "folder of images"
        )
    return _folder_images(folder, color_mode)


def _family_images(family: Family, root: str, color_mode: str | None) -> EvalImages:
    """``root`` read by ``family``'s dataset transform (``mnist`` or ``faces``)."""
    size = family.config.image_size
    if family.dataset == "mnist":
        data = load_mnist(root, train=False, size=size)
        images = data.images
        if color_mode == "RGB":  # PIL's L -> RGB repeats the channel
            images = images.repeat(1, 3, 1, 1)
        ids = tuple(f"mnist-test/{i:05d}" for i in range(len(images)))
        return EvalImages("mnist-test", images, ids, data.labels)
    channels = {"L": 1, "RGB": 3}.get(color_mode or "", family.config.in_channels)
    files = list_images(root)
    faces = load_face_folder(root, size, channels).images
    ids = tuple(str(p.relative_to(root).with_suffix("")) for p in files)
    return EvalImages(str(root), faces, ids)


def _folder_images(root: Path, color_mode: str | None) -> EvalImages:
    """The images of a folder as they are."""
    files = list_images(root)
    tensors = []
    channels: dict[int, Path] = {}
    for path in files:
        img = load_image(path, color_mode)
        channels.setdefault(img.shape[0], path)
        tensors.append(img)
    if len(channels) > 1:
        examples = ", ".join(f"{p} ({c} channels)" for c, p in sorted(channels.items()))
        raise ValueError(
            f"{root} mixes grayscale and colour images ({examples}); pass "
            "--color-mode L or RGB to convert them"
        )
    ids = tuple(str(p.relative_to(root).with_suffix("")) for p in files)
    same_size = len({tuple(t.shape) for t in tensors}) == 1
    images = torch.stack(tensors) if same_size else tuple(tensors)
    return EvalImages(str(root), images, ids)
