"""Reading a ``.hqa`` file from a stream: no more bytes than its header promises.

:func:`read_file` checks the magic and the version from the first bytes, then
the name length, the image count and the size table as they arrive, and reads
the payload only up to what that many codes can take under the file's prior
(:func:`~compressai_hqa.codec.format.max_payload_length`: ``8 + 4 x codes``
bytes for the learned prior, about ``8 x codes`` for the context prior; the
uniform prior's is smaller), then one byte that must not exist. A stream that is
not an ``.hqa`` file, or one that never ends (``/dev/zero``, an endless pipe),
costs a few bytes; the largest valid file is about 135 MB (context prior).
:func:`~compressai_hqa.codec.format.unpack` then validates the
bytes (CRC, every field, the exact payload length).
"""

from __future__ import annotations

import math

from typing import BinaryIO

from compressai_hqa.codec.format import (
    _FIXED,
    _FLAG_SHARED,
    _SIZE,
    _U32,
    MAGIC,
    MAX_CODES,
    MAX_IMAGES,
    MAX_NAME,
    PRIOR_IDS,
    _fail,
    check_version,
    max_payload_length,
)
from compressai_hqa.errors import CorruptStreamError

__all__ = ["read_file"]

_MAX_LOG2_FACTOR = 16


def read_file(stream: BinaryIO) -> bytes:
    """The bytes of one ``.hqa`` file from ``stream`` (see the module docstring).

    Args:
        stream: a binary file object positioned at the file's first byte.

    Returns:
        The bytes read, to be checked by :func:`~compressai_hqa.codec.format.unpack`.

    Raises:
        CorruptStreamError: not an ``.hqa`` file, a newer version, a field out
            of range, a stream that ends early or continues after the CRC.
    """
    fixed = _read(stream, _FIXED.size, allow_short=True)
    if fixed[: len(MAGIC)] != MAGIC:
        raise CorruptStreamError("not an .hqa file (bad magic bytes)")
    check_version(fixed[len(MAGIC)] if len(fixed) > len(MAGIC) else 0)
    if len(fixed) < _FIXED.size:
        raise _fail(f"{len(fixed)} bytes is shorter than any header")
    fields = _FIXED.unpack(fixed)
    prior_id, flags = fields[2], fields[4]
    log2_factor, name_length = fields[7], fields[8]
    if not 1 <= name_length <= MAX_NAME:
        raise _fail(f"model name of {name_length} bytes (1 to {MAX_NAME})")
    if log2_factor > _MAX_LOG2_FACTOR:
        raise _fail(f"downsampling factor 2^{log2_factor}")
    name_and_count = _read(stream, name_length + _U32.size)
    (count,) = _U32.unpack_from(name_and_count, name_length)
    if not 1 <= count <= MAX_IMAGES:
        raise _fail(f"{count} images (1 to {MAX_IMAGES} per file)")
    stored = 1 if flags & _FLAG_SHARED else count
    sizes = _read(stream, stored * _SIZE.size + _U32.size)
    factor = 1 << log2_factor
    codes = sum(
        math.ceil(h / factor) * math.ceil(w / factor)
        for h, w, _ in _SIZE.iter_unpack(sizes[: stored * _SIZE.size])
    )
    if stored == 1:
        codes *= count
    if codes > MAX_CODES:
        raise _fail(f"{codes} codes (at most {MAX_CODES} per file)")
    (payload_length,) = _U32.unpack_from(sizes, stored * _SIZE.size)
    prior = "context" if prior_id == PRIOR_IDS["context"] else "learned"
    if payload_length > max_payload_length(prior, codes):
        raise _fail(f"a payload of {payload_length} bytes for {codes} codes")
    rest = _read(stream, payload_length + _U32.size)
    if stream.read(1):
        raise _fail("data after the CRC (the file is longer than its header says)")
    return b"".join((fixed, name_and_count, sizes, rest))


def _read(stream: BinaryIO, size: int, allow_short: bool = False) -> bytes:
    """Exactly ``size`` bytes of ``stream``, or fewer at its end if allowed."""
    chunks, left = [], size
    while left:
        chunk = stream.read(left)
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    if left and not allow_short:
        raise _fail("truncated (the stream ends before the header says)")
    return b"".join(chunks)
