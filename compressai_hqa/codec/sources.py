"""The inputs of ``compressai-hqa compress``: image files, folders, globs, IDX files.

A source is an image file (any PIL format), a folder (searched recursively,
sorted), a glob pattern, an MNIST IDX file (``*-idx3-ubyte``, gzipped or not,
recognised by its first bytes) or ``-`` (one image or IDX file on stdin).
Nothing larger than a byte limit is read (stdin, IDX files), and every image is
shown to a ``check`` (its size and channels, from its header) before its pixels
are decoded.
"""

from __future__ import annotations

import glob
import io
import struct
import sys
import zlib

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch

from torch import Tensor

from compressai_hqa.codec import format as fmt
from compressai_hqa.commands import DataError, UsageError
from compressai_hqa.datasets import list_images, load_image, resize_images

__all__ = [
    "DataError",
    "Source",
    "UsageError",
    "expand_sources",
    "iter_images",
    "read_idx",
]

_IDX_MAGIC = b"\x00\x00\x08\x03"  # unsigned bytes, 3 dimensions
_GZIP_MAGIC = b"\x1f\x8b"
_MAX_IDX_BYTES = 1 << 30
_GLOB_CHARS = frozenset("*?[")


@dataclass
class Source:
    """One input: an image file, an IDX file, or stdin's bytes."""

    name: str
    path: Path | None = None
    data: bytes | None = None
    idx: Tensor | None = None  # uint8 (N, H, W) when the source is an IDX file

    @property
    def count(self) -> int:
        return 1 if self.idx is None else len(self.idx)


def expand_sources(specs: Sequence[str], max_bytes: int) -> list[Source]:
    """The sources named on the command line, IDX files read.

    Args:
        specs: paths, folders, glob patterns or ``-``.
        max_bytes: refuse stdin or an IDX file longer than this.

    Raises:
        UsageError: a missing source, or one that is not a file or folder.
        DataError: stdin or an IDX file longer than ``max_bytes``, a bad IDX file.
    """
    if list(specs).count("-") > 1:
        raise UsageError("stdin (-) can be read only once")
    sources: list[Source] = []
    for spec in specs:
        if spec == "-":
            data = sys.stdin.buffer.read(max_bytes + 1)
            if len(data) > max_bytes:
                raise DataError(f"stdin holds more than {max_bytes} bytes")
            sources.append(classify(Source("<stdin>", data=data), max_bytes))
            continue
        path = Path(spec)
        if path.is_dir():
            try:
                files = list_images(path)
            except ValueError as err:
                raise UsageError(str(err)) from None
        elif path.is_file():
            files = [path]
        elif path.exists():
            raise UsageError(
                f"{spec} is not a regular file or folder (a device, pipe or "
                "socket); to read its bytes, pipe them to stdin (-)"
            )
        elif _GLOB_CHARS & set(spec):
            files = [Path(p) for p in sorted(glob.glob(spec, recursive=True))]
            files = [p for p in files if p.is_file()]
            if not files:
                raise UsageError(f"no file matches {spec!r}")
        else:
            raise UsageError(f"no such file or folder: {spec}")
        sources.extend(classify(Source(str(f), path=f), max_bytes) for f in files)
    return sources


def classify(source: Source, max_bytes: int = 1 << 30) -> Source:
    """Reads IDX files (recognised by their first bytes) into ``source.idx``."""
    head = source.data[:4] if source.data is not None else _head(source.path)
    if head.startswith(_GZIP_MAGIC) or head == _IDX_MAGIC:
        if source.path is not None and source.path.stat().st_size > max_bytes:
            raise DataError(
                f"{source.name}: an IDX file of more than {max_bytes} bytes"
            )
        data = source.data if source.data is not None else source.path.read_bytes()
        source.idx = read_idx(data, source.name, max_bytes)
        source.data = None
    return source


def _head(path: Path | None) -> bytes:
    assert path is not None
    try:
        with open(path, "rb") as f:
            return f.read(4)
    except OSError as err:
        raise DataError(f"cannot read {path}: {err.strerror}") from None


def read_idx(
    data: bytes, name: str = "IDX file", max_bytes: int = _MAX_IDX_BYTES
) -> Tensor:
    """The images of an MNIST IDX file (gzipped or not): a uint8 (N, H, W) tensor.

    Args:
        data: the file's bytes.
        name: the file's name, for messages.
        max_bytes: the most bytes the file may hold once decompressed.

    Raises:
        DataError: not an IDX file of unsigned bytes with 3 dimensions, sizes
            out of range, or a length that does not match its header.
    """
    if data.startswith(_GZIP_MAGIC):
        inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            data = inflate.decompress(data, max_bytes + 1)
        except zlib.error as err:
            raise DataError(f"{name}: corrupt gzip data ({err})") from None
        if len(data) > max_bytes or not inflate.eof:
            raise DataError(f"{name}: corrupt or too large gzip data")
    if len(data) < 16 or data[:4] != _IDX_MAGIC:
        raise DataError(f"{name}: not an IDX file of images (unsigned bytes, 3 dims)")
    count, height, width = struct.unpack(">III", data[4:16])
    if not (1 <= count <= fmt.MAX_IMAGES and 1 <= height <= 0xFFFF):
        raise DataError(f"{name}: {count} images of {height}x{width} out of range")
    if not 1 <= width <= 0xFFFF or height * width > fmt.MAX_PIXELS:
        raise DataError(f"{name}: images of {height}x{width} out of range")
    if len(data) != 16 + count * height * width:
        raise DataError(
            f"{name}: {len(data) - 16} bytes of pixels, the header says "
            f"{count} x {height} x {width}"
        )
    pixels = torch.frombuffer(bytearray(data[16:]), dtype=torch.uint8)
    return pixels.view(count, height, width)


#: What :func:`iter_images` shows each image: name, stored (H, W), coded (H, W),
#: channels.
Check = Callable[[str, tuple[int, int], tuple[int, int], int], None]


def _check_file(
    check: Check, name: str, resize: int | None, height: int, width: int, channels: int
) -> None:
    coded = (resize, resize) if resize else (height, width)
    check(name, (height, width), coded, channels)


def iter_images(
    sources: Sequence[Source],
    color_mode: str | None,
    idx_size: int,
    check: Check | None = None,
    resize: int | None = None,
) -> Iterator[tuple[str, Tensor]]:
    """(name, image) of every source in order: (C, H, W) floats in [0, 1].

    Args:
        sources: from :func:`expand_sources`.
        color_mode: ``"L"``, ``"RGB"`` or None (images keep their channels).
        idx_size: square IDX images are resized to this (0: kept).
        check: called with the name, the stored size (H, W), the size to code
            (H, W, after resizing) and the channels of every image file before
            its pixels are decoded, and once per IDX file; it raises to refuse.
        resize: resize every image to ``resize`` x ``resize`` (bilinear,
            antialiased: :func:`~compressai_hqa.datasets.resize_images`).
    """
    for source in sources:
        if source.idx is not None:
            n, h, w = stored = source.idx.shape
            if resize:
                h = w = resize
            elif idx_size and h == w:
                h = w = idx_size
            if check is not None:
                channels = 3 if color_mode == "RGB" else 1
                check(source.name, stored[1:], (h, w), channels)
            for start in range(0, n, 1024):
                x = source.idx[start : start + 1024].unsqueeze(1).float() / 255.0
                if h != x.shape[-2] or w != x.shape[-1]:
                    x = resize_images(x, h)
                if color_mode == "RGB":
                    x = x.repeat(1, 3, 1, 1)
                for i, image in enumerate(x.unbind(0)):
                    yield f"{source.name}[{start + i}]", image
            continue
        stream = io.BytesIO(source.data) if source.data is not None else source.path
        hook = (
            None if check is None else partial(_check_file, check, source.name, resize)
        )
        try:
            image = load_image(stream, color_mode, fmt.MAX_PIXELS, hook)
        except ValueError as err:
            raise DataError(str(err).replace(str(stream), source.name)) from None
        if resize and image.shape[-2:] != (resize, resize):
            image = resize_images(image.unsqueeze(0), resize)[0]
        yield source.name, image
