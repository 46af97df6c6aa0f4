"""The ``.hqa`` file format: many images' HQA codes in one entropy-coded payload.

Layout (version 2; integers little-endian and unsigned; ``docs/format.md`` is
the reference)::

    magic          4   b"\\x89HQA"
    version        u8  1, or 2 for prior 2 (see PRIOR_VERSIONS)
    prior          u8  0 = uniform (bit-packed), 1 = learned, 2 = context (rANS)
    layer          u8  the HQA layer whose codes are stored (1..255)
    flags          u8  bit 0: one (H, W, C) for all images; other bits 0
    fingerprint    16  first 16 bytes of the SHA-256 of the weights (and prior)
    codebook_size  u16 number of codes K of that layer (2..32768)
    log2_factor    u8  log2 of the downsampling factor f between pixels and codes
    name_length    u8  1..64
    name           ..  model name, ASCII [A-Za-z0-9._-], e.g. "hqa-mnist"
    count          u32 number of images N (1..MAX_IMAGES)
    sizes          ..  (H u16, W u16, C u8) once if bit 0 of flags, else N times
    payload_len    u32 bytes of the payload
    payload        ..  the codes of all images, image after image, row-major
    crc32          u32 CRC-32 (zlib) of every byte before it

Every image of H x W pixels has ``ceil(H / f) * ceil(W / f)`` codes. With the
uniform prior (K a power of two, b = log2 K) the payload is the codes'
b-bit big-endian binary digits concatenated and zero-padded to a byte: exactly
the ideal rate. With the learned prior it is one CompressAI rANS stream of all
codes (:class:`~compressai_hqa.entropy_models.CategoricalCoder`), with the
context prior one stream of all codes in the order of
:class:`~compressai_hqa.entropy_models.ContextCoder`.

Reading checks the magic, the CRC, the version and then every field against
the limits below before allocating anything that depends on them; the payload
length must be exactly what the header implies (uniform) or possible for that
many codes (learned, context: :func:`max_payload_length`). Every failure raises
:class:`~compressai_hqa.CorruptStreamError`.
"""

from __future__ import annotations

import math
import re
import struct
import zlib

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from compressai_hqa.codec.bitpacking import pack_bits, unpack_bits
from compressai_hqa.codec.payload import (
    decode_payload,
    encode_payload,
    max_payload_length,
)
from compressai_hqa.errors import CorruptStreamError
from compressai_hqa.models.hqa import MAX_PIXELS  # H * W per image

__all__ = [
    "FINGERPRINT_BYTES",
    "MAGIC",
    "MAX_CODES",
    "MAX_IMAGES",
    "MAX_PIXELS",
    "PRIOR_IDS",
    "PRIOR_VERSIONS",
    "VERSION",
    "Header",
    "ImageSize",
    "check_sizes",
    "check_version",
    "decode_payload",
    "encode_payload",
    "max_payload_length",
    "pack",
    "pack_bits",
    "unpack",
    "unpack_bits",
]

MAGIC = b"\x89HQA"
VERSION = 2
#: Entropy model of the payload -> its id in the header.
PRIOR_IDS = {"uniform": 0, "learned": 1, "context": 2}
#: The format version a file of each prior is written with (the first that has it).
PRIOR_VERSIONS = {"uniform": 1, "learned": 1, "context": 2}
FINGERPRINT_BYTES = 16
#: Limits checked before anything is allocated.
MAX_IMAGES = 1 << 20
MAX_CODES = 1 << 24  # all images together
MAX_NAME = 64
CHANNELS = (1, 3)

_FLAG_SHARED = 1
_NAME = re.compile(r"[A-Za-z0-9._-]+")
_FIXED = struct.Struct("<4sBBBB16sHBB")  # up to the name
_SIZE = struct.Struct("<HHB")
_U32 = struct.Struct("<I")


class ImageSize(NamedTuple):
    """The original size of an image: height, width and channels (1 or 3)."""

    height: int
    width: int
    channels: int


@dataclass(frozen=True)
class Header:
    """Everything in a ``.hqa`` file but the payload.

    Attributes:
        model: model name, e.g. ``"hqa-mnist"``.
        fingerprint: 16 bytes identifying the weights (and learned prior).
        layer: the layer whose codes are stored.
        prior: ``"uniform"``, ``"learned"`` or ``"context"``.
        codebook_size: number of codes K of that layer.
        factor: downsampling factor between pixels and codes (a power of two).
        sizes: the original size of every image.
        version: format version (default: the prior's, :data:`PRIOR_VERSIONS`).
    """

    model: str
    fingerprint: bytes
    layer: int
    prior: str
    codebook_size: int
    factor: int
    sizes: tuple[ImageSize, ...]
    version: int | None = None

    def __post_init__(self) -> None:
        if self.version is None:
            object.__setattr__(self, "version", PRIOR_VERSIONS.get(self.prior, 1))
        _check_header(self)

    @property
    def count(self) -> int:
        """Number of images."""
        return len(self.sizes)

    @property
    def shared_size(self) -> bool:
        """Whether all images have one size (stored once)."""
        return len(set(self.sizes)) == 1

    def latent_shape(self, size: ImageSize) -> tuple[int, int]:
        """Code grid (h, w) of an image of this size."""
        return math.ceil(size.height / self.factor), math.ceil(size.width / self.factor)

    @property
    def codes_per_image(self) -> list[int]:
        """Number of codes of each image."""
        if self.shared_size:
            h, w = self.latent_shape(self.sizes[0])
            return [h * w] * self.count
        return [math.prod(self.latent_shape(s)) for s in self.sizes]

    @property
    def total_codes(self) -> int:
        """Number of codes of all images."""
        if self.shared_size:
            return self.count * math.prod(self.latent_shape(self.sizes[0]))
        return sum(math.prod(self.latent_shape(s)) for s in self.sizes)

    @property
    def ideal_bits(self) -> int:
        """``total_codes * log2 K``: the paper's rate of all images (uniform)."""
        return round(self.total_codes * math.log2(self.codebook_size))


def _fail(message: str) -> CorruptStreamError:
    return CorruptStreamError(f"corrupt .hqa file: {message}")


def _check_header(h: Header) -> None:
    """Every field within its range (for writing and for reading)."""
    if h.prior not in PRIOR_IDS:
        raise _fail(f"unknown prior {h.prior!r}")
    if not PRIOR_VERSIONS[h.prior] <= h.version <= VERSION:  # type: ignore[operator]
        raise _fail(f"format version {h.version} cannot hold the {h.prior} prior")
    if not (1 <= len(h.model) <= MAX_NAME and _NAME.fullmatch(h.model)):
        raise _fail(f"bad model name {h.model!r}")
    if not isinstance(h.fingerprint, bytes) or len(h.fingerprint) != FINGERPRINT_BYTES:
        raise _fail("the weights fingerprint must be 16 bytes")
    if not 1 <= h.layer <= 255:
        raise _fail(f"layer {h.layer} out of range")
    k = h.codebook_size
    if not 2 <= k <= 1 << 15:
        raise _fail(f"codebook size {k} out of range")
    if h.prior == "uniform" and k & (k - 1):
        raise _fail(f"the uniform prior needs a power-of-two codebook, not {k}")
    if h.factor < 1 or h.factor & (h.factor - 1) or h.factor > 1 << 16:
        raise _fail(f"bad downsampling factor {h.factor}")
    if not 1 <= len(h.sizes) <= MAX_IMAGES:
        raise _fail(f"{len(h.sizes)} images (1 to {MAX_IMAGES} per file)")
    for size in set(h.sizes):
        height, width, channels = size
        if not (1 <= height <= 0xFFFF and 1 <= width <= 0xFFFF):
            raise _fail(f"image size {height}x{width} out of range")
        if height * width > MAX_PIXELS:
            raise _fail(f"image of {height}x{width} pixels (at most {MAX_PIXELS})")
        if channels not in CHANNELS:
            raise _fail(f"{channels} channels (1 or 3)")
    if h.total_codes > MAX_CODES:
        raise _fail(f"{h.total_codes} codes (at most {MAX_CODES} per file)")


def pack(header: Header, payload: bytes) -> bytes:
    """The bytes of a ``.hqa`` file."""
    shared = header.shared_size
    name = header.model.encode("ascii")
    parts = [
        _FIXED.pack(
            MAGIC,
            header.version,
            PRIOR_IDS[header.prior],
            header.layer,
            _FLAG_SHARED if shared else 0,
            header.fingerprint,
            header.codebook_size,
            header.factor.bit_length() - 1,
            len(name),
        ),
        name,
        _U32.pack(header.count),
    ]
    sizes = header.sizes[:1] if shared else header.sizes
    parts.extend(_SIZE.pack(*s) for s in sizes)
    parts += [_U32.pack(len(payload)), payload]
    body = b"".join(parts)
    return body + _U32.pack(zlib.crc32(body))


def unpack(data: bytes) -> tuple[Header, bytes]:
    """Header and payload of a ``.hqa`` file, every field validated.

    Raises:
        CorruptStreamError: not an ``.hqa`` file, a newer format version, a
            CRC mismatch, a field out of range, a non-canonical size table, or a
            payload whose length does not fit the header (truncated or extended
            file).
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise CorruptStreamError(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) < len(MAGIC) or data[: len(MAGIC)] != MAGIC:
        raise CorruptStreamError("not an .hqa file (bad magic bytes)")
    minimum = _FIXED.size + 1 + 2 * _U32.size + _SIZE.size + _U32.size
    if len(data) < minimum:
        raise _fail(f"{len(data)} bytes is shorter than any header ({minimum})")
    body, (crc,) = data[:-4], _U32.unpack(data[-4:])
    if zlib.crc32(body) != crc:
        raise _fail("CRC-32 mismatch (the file is damaged, truncated or extended)")
    fields = _FIXED.unpack_from(body)
    version, prior_id, layer, flags, fingerprint = fields[1:6]
    codebook_size, log2_factor, name_length = fields[6:]
    check_version(version)
    priors = {v: k for k, v in PRIOR_IDS.items()}
    if prior_id not in priors:
        raise _fail(f"unknown prior id {prior_id}")
    if flags & ~_FLAG_SHARED:
        raise _fail(f"unknown flags {flags:#04x}")
    if log2_factor > 16:
        raise _fail(f"downsampling factor 2^{log2_factor}")
    offset = _FIXED.size
    name_bytes = body[offset : offset + name_length]
    offset += name_length
    if len(body) < offset + _U32.size:
        raise _fail("truncated header")
    try:
        name = name_bytes.decode("ascii")
    except UnicodeDecodeError:
        raise _fail("model name is not ASCII") from None
    (count,) = _U32.unpack_from(body, offset)
    offset += _U32.size
    if not 1 <= count <= MAX_IMAGES:
        raise _fail(f"{count} images (1 to {MAX_IMAGES} per file)")
    stored = 1 if flags & _FLAG_SHARED else count
    if len(body) < offset + stored * _SIZE.size + _U32.size:
        raise _fail("truncated header (image sizes)")
    if flags & _FLAG_SHARED:
        sizes = (ImageSize(*_SIZE.unpack_from(body, offset)),) * count
    else:
        table = body[offset : offset + count * _SIZE.size]
        sizes = tuple(ImageSize(*s) for s in _SIZE.iter_unpack(table))
        if len(set(sizes)) == 1:  # one image too: flag bit 0 must then be set
            raise _fail("one size stored per image although all are equal")
    offset += stored * _SIZE.size
    (payload_length,) = _U32.unpack_from(body, offset)
    offset += _U32.size
    payload = body[offset:]
    if payload_length != len(payload):
        raise _fail(
            f"the payload holds {len(payload)} bytes, the header says {payload_length}"
        )
    header = Header(
        model=name,
        fingerprint=fingerprint,
        layer=layer,
        prior=priors[prior_id],
        codebook_size=codebook_size,
        factor=1 << log2_factor,
        sizes=sizes,
        version=version,
    )
    low, high = _payload_bounds(header)
    if not low <= len(payload) <= high:
        what = f"exactly {low}" if low == high else f"{low} to {high}"
        raise _fail(
            f"{header.total_codes} codes take {what} payload bytes, got {len(payload)}"
        )
    return header, payload


def check_version(version: int) -> None:
    """Raises CorruptStreamError for a version this reader cannot read."""
    if version > VERSION:
        raise CorruptStreamError(
            f".hqa format version {version} is newer than this compressai_hqa "
            f"reads (version {VERSION}); upgrade compressai_hqa"
        )
    if version < 1:
        raise _fail(f"format version {version}")


def _payload_bounds(header: Header) -> tuple[int, int]:
    n = header.total_codes
    if header.prior == "uniform":
        size = -(-n * (header.codebook_size.bit_length() - 1) // 8)
        return size, size
    return 8, max_payload_length(header.prior, n)


def check_sizes(sizes: Sequence[ImageSize]) -> None:
    """Raises ValueError if ``sizes`` cannot be stored (before compressing)."""
    for s in set(sizes):
        if not (1 <= s.height <= 0xFFFF and 1 <= s.width <= 0xFFFF) or (
            s.height * s.width > MAX_PIXELS
        ):
            raise ValueError(
                f"an image of {s.height}x{s.width} pixels cannot be stored "
                f"(at most 65535 per side and {MAX_PIXELS} pixels)"
            )
        if s.channels not in CHANNELS:
            raise ValueError(f"images must have 1 or 3 channels, not {s.channels}")
