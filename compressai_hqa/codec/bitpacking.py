"""The uniform prior's payload: codes as fixed-width binary digits, bit-packed.

Each code is written as its ``bits`` binary digits, most significant first; the
digits of all codes are concatenated and padded with zero bits to a whole byte
(``docs/format.md``). Large arrays are (un)packed a million codes at a time.
"""

from __future__ import annotations

import numpy as np

from compressai_hqa.errors import CorruptStreamError

__all__ = ["pack_bits", "unpack_bits"]

_BITS_CHUNK = 1 << 20  # codes per chunk when (un)packing bits


def _fail(message: str) -> CorruptStreamError:
    return CorruptStreamError(f"corrupt .hqa file: {message}")


def pack_bits(codes: np.ndarray, bits: int) -> bytes:
    """``bits``-bit big-endian digits of ``codes``, concatenated, zero-padded."""
    codes = np.asarray(codes, dtype=np.int64).reshape(-1)
    if bits == 8:
        return codes.astype(np.uint8).tobytes()
    shifts = np.arange(bits - 1, -1, -1, dtype=np.int64)
    chunks = []
    for start in range(0, codes.size, _BITS_CHUNK):  # a multiple of 8 codes
        digits = (codes[start : start + _BITS_CHUNK, None] >> shifts) & 1
        chunks.append(np.packbits(digits.astype(np.uint8).reshape(-1)).tobytes())
    return b"".join(chunks)


def unpack_bits(payload: bytes, count: int, bits: int) -> np.ndarray:
    """Inverse of :func:`pack_bits`; padding bits must be zero.

    Raises:
        CorruptStreamError: wrong length or non-zero padding.
    """
    if len(payload) != -(-count * bits // 8):
        raise _fail(f"{count} codes of {bits} bits cannot take {len(payload)} bytes")
    raw = np.frombuffer(payload, dtype=np.uint8)
    if bits == 8:
        return raw.astype(np.int64)
    pad = len(payload) * 8 - count * bits
    if pad and raw[-1] & ((1 << pad) - 1):
        raise _fail("non-zero padding bits after the last code")
    weights = 1 << np.arange(bits - 1, -1, -1, dtype=np.int64)
    out = np.empty(count, dtype=np.int64)
    step = _BITS_CHUNK * bits // 8  # bytes of _BITS_CHUNK codes
    for i, start in enumerate(range(0, count, _BITS_CHUNK)):
        n = min(_BITS_CHUNK, count - start)
        digits = np.unpackbits(raw[i * step : i * step + -(-n * bits // 8)])
        out[start : start + n] = digits[: n * bits].reshape(n, bits) @ weights
    return out
