"""Uniform categorical entropy model on CompressAI's rANS coder.

HQA transmits only the top layer's code indices under a uniform prior, so each
code costs log2 K bits. This module turns index tensors into real bitstreams with
``compressai.ans`` (16-bit CDF with K+2 entries: K symbols and CompressAI's escape
slot) and back.

CompressAI's ``RansEncoder`` sizes its output buffer by the number of symbols and
overruns it (heap corruption, "double free") when fewer than about two 32-bit
words of symbols are coded, e.g. the single 8-bit code of a 1x1 latent. Every
stream therefore ends with ``GUARD_SYMBOLS`` symbols from a CDF that gives them
probability 65535/65536 (3e-5 bits each), which pads the buffer at no real cost.
"""

from __future__ import annotations

import math

from collections.abc import Sequence
from functools import cache
from itertools import pairwise

import torch

from compressai import ans
from compressai._CXX import pmf_to_quantized_cdf
from torch import Tensor

__all__ = ["GUARD_SYMBOLS", "PRECISION", "UniformCategoricalCoder"]

PRECISION = 16
GUARD_SYMBOLS = 2
_GUARD_CDF = [0, (1 << PRECISION) - 1, 1 << PRECISION]


@cache
def _uniform_cdf(num_symbols: int) -> tuple[int, ...]:
    cdf = pmf_to_quantized_cdf([1.0 / num_symbols] * num_symbols + [0.0], PRECISION)
    if (
        len(cdf) != num_symbols + 2
        or cdf[0] != 0
        or cdf[-1] != 1 << PRECISION
        or any(b <= a for a, b in pairwise(cdf))
    ):  # a malformed CDF silently corrupts rANS streams
        raise RuntimeError(f"invalid quantised CDF for {num_symbols} symbols")
    return tuple(cdf)


class UniformCategoricalCoder:
    """Codes integers in [0, K) with probability 1/K each.

    Args:
        num_symbols: alphabet size K (2 <= K <= 32768).
    """

    def __init__(self, num_symbols: int) -> None:
        if not 2 <= num_symbols <= 1 << (PRECISION - 1):
            raise ValueError(f"num_symbols must be in [2, 32768], got {num_symbols}")
        self.num_symbols = num_symbols
        self._cdfs = [list(_uniform_cdf(num_symbols)), _GUARD_CDF]
        self._sizes = [len(c) for c in self._cdfs]
        self._offsets = [0, 0]

    @property
    def bits_per_symbol(self) -> float:
        """Ideal rate log2 K of one symbol."""
        return math.log2(self.num_symbols)

    def likelihoods(self, symbols: Tensor) -> Tensor:
        """Probability 1/K of every symbol, shaped like ``symbols`` (float)."""
        return torch.full(
            symbols.shape,
            1.0 / self.num_symbols,
            dtype=torch.float32,
            device=symbols.device,
        )

    def compress(self, symbols: Tensor) -> list[bytes]:
        """One rANS bitstream per batch item of ``symbols`` (B, ...)."""
        flat = symbols.detach().reshape(symbols.shape[0], -1).to("cpu", torch.int64)
        if flat.numel() and (flat.min() < 0 or flat.max() >= self.num_symbols):
            raise ValueError(f"symbols must be in [0, {self.num_symbols})")
        n = flat.shape[1]
        indexes = [0] * n + [1] * GUARD_SYMBOLS
        encoder = ans.RansEncoder()
        return [
            encoder.encode_with_indexes(
                row + [0] * GUARD_SYMBOLS,
                indexes,
                self._cdfs,
                self._sizes,
                self._offsets,
            )
            for row in flat.tolist()
        ]

    def decompress(self, strings: Sequence[bytes], shape: Sequence[int]) -> Tensor:
        """Inverse of :meth:`compress`: a (len(strings), *shape) int64 tensor."""
        n = math.prod(shape)
        indexes = [0] * n + [1] * GUARD_SYMBOLS
        decoder = ans.RansDecoder()
        rows = []
        for s in strings:
            if not isinstance(s, (bytes, bytearray)) or len(s) < 8 or len(s) % 4:
                raise ValueError(
                    "not an HQA rANS bitstream (length must be 8 + 4k bytes)"
                )
            row = decoder.decode_with_indexes(
                bytes(s), indexes, self._cdfs, self._sizes, self._offsets
            )
            rows.append(row[:n])
        out = torch.tensor(rows, dtype=torch.int64).reshape(len(rows), *shape)
        if out.numel() and (out.min() < 0 or out.max() >= self.num_symbols):
            raise ValueError("corrupt bitstream: decoded an escape symbol")
        return out
