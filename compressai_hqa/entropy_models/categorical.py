"""Categorical entropy models on CompressAI's rANS coder, safe on hostile streams.

A :class:`CategoricalCoder` codes integers in [0, K) under a fixed prior given
as 16-bit frequencies (each >= 1, summing to 2^16): the uniform prior of the
paper (:class:`~compressai_hqa.entropy_models.UniformCategoricalCoder`) or a
prior learnt from code frequencies (:func:`quantize_frequencies`).

Two details of ``compressai.ans`` (1.2.8) shape the streams:

* **Escape slot of zero width.** CompressAI's CDFs end with an escape slot; a
  decoded escape switches to a bypass mode whose reads a hostile stream can
  extend far beyond the buffer. Here the escape slot has zero width (the CDF's
  last two entries are both 2^16), so the decoder can never decode it: each
  symbol reads at most one 32-bit word and a stream of ``n`` symbols at most
  ``n + 4`` words. The escape is never encoded either (symbols are checked to
  lie in [0, K) first). CompressAI's check that CDFs increase strictly is an
  ``assert`` compiled out of its release builds.
* **Guard symbols.** ``RansEncoder`` sizes its output buffer by the number of
  symbols and overruns it (heap corruption, "double free") when fewer than about
  two 32-bit words of symbols are coded, e.g. the single 8-bit code of a 1x1
  latent. Every stream therefore ends with ``GUARD_SYMBOLS`` symbols 0 from a
  CDF that gives them probability 65535/65536 (3e-5 bits each), which pads the
  buffer at no real cost. (A probability of exactly 1 crashes the encoder.)

:meth:`CategoricalCoder.decode` validates a stream before and after the native
decoder runs: its length must be possible for ``n`` symbols (exactly known for
a uniform prior over a power of two), the buffer handed to the decoder is
padded with zero words so that it cannot be overrun, and the decoded symbols
must re-encode to exactly the given bytes (so trailing, missing or altered bytes
are detected). Any failure raises :class:`~compressai_hqa.CorruptStreamError`.
"""

from __future__ import annotations

import math

from collections.abc import Sequence
from itertools import accumulate

import torch

from compressai import ans
from torch import Tensor

from compressai_hqa.errors import CorruptStreamError

__all__ = [
    "GUARD_SYMBOLS",
    "MAX_CODEBOOK_SIZE",
    "PRECISION",
    "CategoricalCoder",
    "quantize_frequencies",
]

PRECISION = 16
GUARD_SYMBOLS = 2
#: Largest codebook: every code needs a 16-bit frequency of at least 2.
MAX_CODEBOOK_SIZE = 1 << (PRECISION - 1)
_TOTAL = 1 << PRECISION
# Symbol 0 (65535/65536), symbol 1 (1/65536, never encoded), escape of zero width.
_GUARD_CDF = [0, _TOTAL - 1, _TOTAL, _TOTAL]
# Per-symbol loss of rANS's integer state update, an upper bound in bits.
_ROUNDING_BITS = 1e-4


def quantize_frequencies(counts: Sequence[int]) -> tuple[int, ...]:
    """16-bit frequencies proportional to ``counts``, each at least 1.

    Every symbol stays codable (frequency >= 1, at most 16 bits) and the
    frequencies sum to 2^16. Integer arithmetic only: the same counts give the
    same table on every machine. All-zero counts give the uniform table.

    Args:
        counts: non-negative occurrence counts of the K symbols (2 <= K <= 32768).
    """
    counts = [int(c) for c in counts]
    k = len(counts)
    if not 2 <= k <= MAX_CODEBOOK_SIZE:
        raise ValueError(f"need 2 to {MAX_CODEBOOK_SIZE} counts, got {k}")
    if min(counts) < 0:
        raise ValueError("counts must be non-negative")
    if sum(counts) == 0:
        counts = [1] * k
    total = sum(counts)
    spare = _TOTAL - k  # what is left once every symbol has its 1
    shares = [c * spare // total for c in counts]
    remainders = [c * spare % total for c in counts]
    left = spare - sum(shares)
    for i in sorted(range(k), key=lambda j: (-remainders[j], j))[:left]:
        shares[i] += 1
    return tuple(1 + s for s in shares)


class CategoricalCoder:
    """Codes integers in [0, K) under a fixed categorical prior (rANS, 16 bits).

    Args:
        frequencies: K integer frequencies, each >= 1, summing to 2^16 (see
            :func:`quantize_frequencies`); symbol ``s`` has probability
            ``frequencies[s] / 65536``.

    Raises:
        ValueError: the table is not a valid 16-bit frequency table.
    """

    def __init__(self, frequencies: Sequence[int]) -> None:
        freqs = tuple(int(f) for f in frequencies)
        if not 2 <= len(freqs) <= MAX_CODEBOOK_SIZE:
            raise ValueError(
                f"a categorical prior needs 2 to {MAX_CODEBOOK_SIZE} codes, "
                f"got {len(freqs)}"
            )
        if min(freqs) < 1 or sum(freqs) != _TOTAL:
            raise ValueError(
                "frequencies must be integers >= 1 summing to 65536 "
                "(see quantize_frequencies)"
            )
        self.frequencies = freqs
        cdf = [0, *accumulate(freqs), _TOTAL]  # K + 2 entries, escape of width 0
        self._cdfs = [cdf, _GUARD_CDF]
        self._sizes = [len(cdf), len(_GUARD_CDF)]
        self._offsets = [0, 0]
        self._min_bits = PRECISION - math.log2(max(freqs))
        uniform_bits = PRECISION - math.log2(freqs[0])
        exact = len(set(freqs)) == 1 and uniform_bits == int(uniform_bits)
        # rANS with a power-of-two frequency is bit-packing: exact stream lengths.
        self._exact_bits = int(uniform_bits) if exact else None
        self._symbol_bits: Tensor | None = None

    # ------------------------------------------------------------- properties
    @property
    def codebook_size(self) -> int:
        """Number of codes K (the symbols are the codes 0 to K - 1)."""
        return len(self.frequencies)

    @property
    def symbol_bits(self) -> Tensor:
        """Ideal cost ``-log2 p(s)`` of every symbol, a (K,) float64 tensor."""
        if self._symbol_bits is None:
            freqs = torch.tensor(self.frequencies, dtype=torch.float64)
            self._symbol_bits = PRECISION - torch.log2(freqs)
        return self._symbol_bits

    def bits(self, symbols: Tensor) -> float:
        """Ideal rate in bits of ``symbols`` (without the rANS flush)."""
        self._check_symbols(symbols)
        return float(self.symbol_bits[symbols.detach().cpu().long()].sum())

    def likelihoods(self, symbols: Tensor) -> Tensor:
        """Probability of every symbol, shaped like ``symbols`` (float32)."""
        probs = torch.tensor(self.frequencies, dtype=torch.float32) / _TOTAL
        return probs.to(symbols.device)[symbols.long()]

    # ---------------------------------------------------------------- lengths
    def max_stream_length(self, count: int) -> int:
        """Bytes of the longest stream of ``count`` symbols (8-byte flush, words)."""
        return 8 + 4 * int(count)

    def stream_length(self, count: int) -> int | None:
        """Exact bytes of every stream of ``count`` symbols, when that is fixed.

        Fixed for a uniform prior over a power of two (each symbol shifts
        ``log2 K`` bits into the 64-bit state, which starts 32 bits long and
        flushes 32-bit words once it would exceed 63 bits); None otherwise.
        """
        if self._exact_bits is None:
            return None
        words = max(0, -(-(int(count) * self._exact_bits - 31) // 32))
        return 8 + 4 * words

    # ---------------------------------------------------------- single stream
    def encode(self, symbols: Sequence[int] | Tensor) -> bytes:
        """One rANS stream of ``symbols`` (a flat sequence of ints in [0, K)).

        Raises:
            ValueError: a symbol lies outside [0, K).
        """
        if isinstance(symbols, Tensor):
            self._check_symbols(symbols)
            values = symbols.detach().reshape(-1).to("cpu", torch.int64).tolist()
        else:
            values = [int(s) for s in symbols]
            if values and (min(values) < 0 or max(values) >= self.codebook_size):
                raise ValueError(f"symbols must be in [0, {self.codebook_size})")
        return self._encode(values)

    def decode(self, stream: bytes, count: int) -> list[int]:
        """The ``count`` symbols of a stream from :meth:`encode`, validated.

        Raises:
            CorruptStreamError: the stream cannot hold ``count`` symbols, is not
                exactly what :meth:`encode` writes for the symbols it decodes to
                (trailing, missing or altered bytes), or is not bytes.
        """
        if not isinstance(stream, (bytes, bytearray, memoryview)):
            raise CorruptStreamError(
                f"a bitstream must be bytes, got {type(stream).__name__}"
            )
        stream = bytes(stream)
        count = int(count)
        length = len(stream)
        longest = self.max_stream_length(count)
        exact = self.stream_length(count)
        if length < 8 or length % 4:
            raise CorruptStreamError(
                f"not an HQA rANS bitstream: {length} bytes (length must be "
                "8 + 4k bytes)"
            )
        if exact is not None and length != exact:
            raise CorruptStreamError(
                f"corrupt bitstream: {count} codes take exactly {exact} bytes, "
                f"got {length}"
            )
        if length > longest:
            raise CorruptStreamError(
                f"corrupt bitstream: {length} bytes is more than {count} codes "
                f"can take ({longest})"
            )
        if count * (self._min_bits - _ROUNDING_BITS) > 8 * length:
            raise CorruptStreamError(
                f"corrupt bitstream: {length} bytes cannot hold {count} codes"
            )
        # The decoder reads at most 2 + 1 per symbol (guards included) words:
        # zero padding makes an overrun impossible; re-encoding checks the rest.
        padded = stream + bytes(longest + 4 * GUARD_SYMBOLS - length)
        decoded = ans.RansDecoder().decode_with_indexes(
            padded,
            [0] * count + [1] * GUARD_SYMBOLS,
            self._cdfs,
            self._sizes,
            self._offsets,
        )
        values, guards = decoded[:count], decoded[count:]
        if any(guards) or (
            values and (min(values) < 0 or max(values) >= self.codebook_size)
        ):
            raise CorruptStreamError("corrupt bitstream: invalid code or guard")
        if self._encode(values) != stream:
            raise CorruptStreamError(
                "corrupt bitstream: the bytes are not the encoding of the codes "
                "they decode to (truncated, extended or altered)"
            )
        return values

    # ------------------------------------------ CompressAI-style, per image
    def compress(self, symbols: Tensor) -> list[bytes]:
        """One rANS bitstream per batch item of ``symbols`` (B, ...)."""
        self._check_symbols(symbols)
        flat = symbols.detach().reshape(symbols.shape[0], -1).to("cpu", torch.int64)
        return [self._encode(row) for row in flat.tolist()]

    def decompress(self, strings: Sequence[bytes], shape: Sequence[int]) -> Tensor:
        """Inverse of :meth:`compress`: a (len(strings), *shape) int64 tensor.

        Raises:
            CorruptStreamError: a string is not a valid stream of
                ``prod(shape)`` symbols (see :meth:`decode`).
        """
        if not isinstance(strings, (list, tuple)):
            raise CorruptStreamError("strings must be a list of bytes")
        n = math.prod(shape)
        rows = [self.decode(s, n) for s in strings]
        return torch.tensor(rows, dtype=torch.int64).reshape(len(rows), *shape)

    # ---------------------------------------------------------------- helpers
    def _encode(self, values: list[int]) -> bytes:
        n = len(values)
        return ans.RansEncoder().encode_with_indexes(
            values + [0] * GUARD_SYMBOLS,
            [0] * n + [1] * GUARD_SYMBOLS,
            self._cdfs,
            self._sizes,
            self._offsets,
        )

    def _check_symbols(self, symbols: Tensor) -> None:
        if symbols.is_floating_point() or symbols.is_complex():
            raise TypeError(f"symbols must be integers, got {symbols.dtype}")
        if symbols.numel() and (
            symbols.min() < 0 or symbols.max() >= self.codebook_size
        ):
            raise ValueError(f"symbols must be in [0, {self.codebook_size})")
