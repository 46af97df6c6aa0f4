"""Image files: which files are images, and reading one as a tensor.

:func:`read_image` reads an 8-bit image as uint8 with its own channels (or those
of a PIL conversion, :data:`COLOR_MODES`); :func:`load_image` reads any supported
image as floats in [0, 1], 16-bit and float grayscale images scaled correctly.
Both refuse an image before decoding its pixels when it has more than
``max_pixels`` pixels. :mod:`compressai_hqa.datasets` builds datasets from them.
"""

from __future__ import annotations

import math

from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from torch import Tensor

__all__ = [
    "COLOR_MODES",
    "IMG_EXTENSIONS",
    "list_images",
    "load_image",
    "read_image",
]

IMG_EXTENSIONS = (
    ".jpg",
    ".jpeg",
    ".png",
    ".ppm",
    ".bmp",
    ".pgm",
    ".tif",
    ".tiff",
    ".webp",
)

#: Conversions one may ask for: PIL's ``L`` (ITU-R 601-2 luma) or ``RGB``.
COLOR_MODES = ("L", "RGB")
# PIL modes read without asking: palette and 1-bit images are decoded, alpha dropped.
_NATIVE_MODES = {"L": "L", "1": "L", "LA": "L", "RGB": "RGB", "P": "RGB", "RGBA": "RGB"}
# Grayscale modes wider than 8 bits (load_image only) -> the value read as 1.0.
_WIDE_MODES = {**dict.fromkeys(("I;16", "I;16B", "I;16L", "I;16N", "I"), 65535), "F": 1}


def list_images(root: str | Path) -> list[Path]:
    """Image files below ``root`` (sorted), or a clear error if there are none."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder not found: {root}")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMG_EXTENSIONS)
    if not files:
        raise ValueError(f"no images ({', '.join(IMG_EXTENSIONS)}) found in {root}")
    return files


def read_image(
    source: str | Path | BinaryIO,
    color_mode: str | None = None,
    max_pixels: int | None = None,
) -> Tensor:
    """One 8-bit image as a uint8 (C, H, W) tensor, with its own channels.

    Args:
        source: a path or a binary file object.
        color_mode: convert to PIL mode ``"L"`` (1 channel) or ``"RGB"`` (3); by
            default grayscale (``L``, ``1``, ``LA``) reads as 1 channel and colour
            (``RGB``, ``P``, ``RGBA``) as 3 (alpha dropped).
        max_pixels: refuse larger images before decoding them.

    Raises:
        ValueError: the file is not a readable image (not an image, truncated,
            unsupported mode, too large), in one line naming the source.
    """
    return _read(source, color_mode, max_pixels, None, wide=False)


def load_image(
    source: str | Path | BinaryIO,
    color_mode: str | None = None,
    max_pixels: int | None = None,
    check: Callable[[int, int, int], None] | None = None,
) -> Tensor:
    """One image as floats in [0, 1], (C, H, W): 8-bit images divided by 255,
    16-bit grayscale ones (PIL modes ``I;16*``, ``I``) by 65535, float ones
    (mode ``F``) as they are, which must be in [0, 1].

    Args:
        source, color_mode, max_pixels: as for :func:`read_image`.
        check: called with (height, width, channels) before the pixels are
            decoded (from the file's header); it may raise to refuse the image.

    Raises:
        ValueError: as :func:`read_image`, or pixel values out of range.
    """
    image = _read(source, color_mode, max_pixels, check, wide=True)
    return image if image.is_floating_point() else image.float().div_(255.0)


def _read(
    source: str | Path | BinaryIO,
    color_mode: str | None,
    max_pixels: int | None,
    check: Callable[[int, int, int], None] | None,
    wide: bool,
) -> Tensor:
    """uint8 (C, H, W), or float32 in [0, 1] for wide modes when ``wide``."""
    from PIL import Image
    from torchvision.transforms.functional import pil_to_tensor

    if color_mode is not None and color_mode not in COLOR_MODES:
        raise ValueError(f"color_mode must be one of {COLOR_MODES}, got {color_mode!r}")
    name = getattr(source, "name", source)
    try:
        with Image.open(source) as img:
            width, height = img.size
            if max_pixels is not None and width * height > max_pixels:
                raise ValueError(f"{width}x{height} pixels is more than {max_pixels}")
            widened = wide and img.mode in _WIDE_MODES
            if color_mode is None and not widened and img.mode not in _NATIVE_MODES:
                raise ValueError(
                    f"unsupported image mode {img.mode!r}; pass "
                    "--color-mode L or RGB to convert it"
                )
            mode = color_mode or ("L" if widened else _NATIVE_MODES[img.mode])
            if check is not None:
                check(height, width, 1 if mode == "L" else 3)
            if widened:
                return _wide_pixels(img, mode)
            return pil_to_tensor(img.convert(mode)).contiguous()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        # PIL: UnidentifiedImageError (an OSError), truncated data, bad headers
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ValueError(f"cannot read image {name}: {reason}") from None


def _wide_pixels(img: Any, mode: str) -> Tensor:
    """A 16-bit or float grayscale PIL image as float32 (C, H, W) in [0, 1]."""
    scale = _WIDE_MODES[img.mode]
    pixels = torch.from_numpy(np.array(img, dtype=np.float32)) / scale
    low, high = float(pixels.min()), float(pixels.max())
    if not (math.isfinite(low) and math.isfinite(high)) or low < 0 or high > 1:
        raise ValueError(
            f"{img.mode} pixels / {scale} are {low:g} to {high:g}, not in [0, 1]"
        )
    return pixels.unsqueeze(0).expand(3 if mode == "RGB" else 1, -1, -1).contiguous()
