"""The inputs of ``compressai-hqa compress``: image files, folders, globs, IDX files.

A source is an image file (any PIL format), a folder (searched recursively,
sorted), a glob pattern, an MNIST IDX file (``*-idx3-ubyte``, gzipped or not,
recognised by its first bytes) or ``-`` (one image or IDX file on stdin).
"""

from __future__ import annotations

import glob
import io
import struct
import sys
import zlib

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from torch import Tensor

from compressai_hqa.codec import format as fmt
from compressai_hqa.datasets import list_images, load_image, resize_images

__all__ = [
    "DataError",
    "Source",
    "UsageError",
    "expand_sources",
    "iter_images",
    "read_idx",
    "read_input",
]

_IDX_MAGIC = b"\x00\x00\x08\x03"  # unsigned bytes, 3 dimensions
_GZIP_MAGIC = b"\x1f\x8b"
_MAX_IDX_BYTES = 1 << 30
_GLOB_CHARS = frozenset("*?[")


class UsageError(Exception):
    """A problem with the command line or the environment (exit status 1)."""


class DataError(Exception):
    """Unreadable or corrupt input data (exit status 2)."""


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


def expand_sources(specs: Sequence[str]) -> list[Source]:
    if list(specs).count("-") > 1:
        raise UsageError("stdin (-) can be read only once")
    sources: list[Source] = []
    for spec in specs:
        if spec == "-":
            sources.append(classify(Source("<stdin>", data=sys.stdin.buffer.read())))
            continue
        path = Path(spec)
        if path.is_dir():
            try:
                files = list_images(path)
            except ValueError as err:
                raise UsageError(str(err)) from None
        elif path.is_file():
            files = [path]
        elif _GLOB_CHARS & set(spec):
            files = [Path(p) for p in sorted(glob.glob(spec, recursive=True))]
            files = [p for p in files if p.is_file()]
            if not files:
                raise UsageError(f"no file matches {spec!r}")
        else:
            raise UsageError(f"no such file or folder: {spec}")
        sources.extend(classify(Source(str(f), path=f)) for f in files)
    return sources


def classify(source: Source) -> Source:
    """Reads IDX files (recognised by their first bytes) into ``source.idx``."""
    head = source.data[:4] if source.data is not None else _head(source.path)
    if head.startswith(_GZIP_MAGIC) or head == _IDX_MAGIC:
        data = source.data if source.data is not None else source.path.read_bytes()
        source.idx = read_idx(data, source.name)
        source.data = None
    return source


def _head(path: Path | None) -> bytes:
    assert path is not None
    try:
        with open(path, "rb") as f:
            return f.read(4)
    except OSError as err:
        raise DataError(f"cannot read {path}: {err.strerror}") from None


def read_idx(data: bytes, name: str = "IDX file") -> Tensor:
    """The images of an MNIST IDX file (gzipped or not): a uint8 (N, H, W) tensor.

    Raises:
        DataError: not an IDX file of unsigned bytes with 3 dimensions, sizes
            out of range, or a length that does not match its header.
    """
    if data.startswith(_GZIP_MAGIC):
        inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            data = inflate.decompress(data, _MAX_IDX_BYTES + 1)
        except zlib.error as err:
            raise DataError(f"{name}: corrupt gzip data ({err})") from None
        if len(data) > _MAX_IDX_BYTES or not inflate.eof:
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


def iter_images(
    sources: Sequence[Source], color_mode: str | None, idx_size: int
) -> Iterator[Tensor]:
    for source in sources:
        if source.idx is not None:
            for start in range(0, len(source.idx), 1024):
                x = source.idx[start : start + 1024].unsqueeze(1).float() / 255.0
                if idx_size and x.shape[-1] == x.shape[-2]:
                    x = resize_images(x, idx_size)
                if color_mode == "RGB":
                    x = x.repeat(1, 3, 1, 1)
                yield from x.unbind(0)
            continue
        stream = io.BytesIO(source.data) if source.data is not None else source.path
        try:
            image = load_image(stream, color_mode, max_pixels=fmt.MAX_PIXELS)
        except ValueError as err:
            raise DataError(str(err).replace(str(stream), source.name)) from None
        yield image


def read_input(spec: str) -> bytes:
    """The bytes of a file, or of stdin for ``-`` (a ``.hqa`` file to read)."""
    if spec == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(spec).read_bytes()
    except FileNotFoundError:
        raise UsageError(f"no such file: {spec}") from None
    except OSError as err:
        raise UsageError(f"cannot read {spec}: {err.strerror}") from None
