"""Uniform categorical entropy model on CompressAI's rANS coder.

HQA transmits only the top layer's code indices under a uniform prior, so each
code costs log2 K bits. With K a power of two every code gets the 16-bit
frequency 2^16 / K exactly, so the rANS stream of ``n`` codes has a length fixed
by ``n`` (:meth:`~CategoricalCoder.stream_length`): ``n log2 K`` bits rounded
up to 32-bit words, plus CompressAI's 8-byte state flush, less the 31 bits the
initial state holds. Decoding checks that length before the native decoder runs.
See :mod:`compressai_hqa.entropy_models.categorical` for the escape slot and the
guard symbols.
"""

from __future__ import annotations

import math

import torch

from torch import Tensor

from compressai_hqa.entropy_models.categorical import (
    GUARD_SYMBOLS,
    MAX_CODEBOOK_SIZE,
    PRECISION,
    CategoricalCoder,
)

__all__ = ["GUARD_SYMBOLS", "PRECISION", "UniformCategoricalCoder"]


class UniformCategoricalCoder(CategoricalCoder):
    """Codes integers in [0, K) with probability 1/K each.

    Args:
        codebook_size: number of codes K (2 <= K <= 32768); a power of two gives
            exact rates and stream lengths.
    """

    def __init__(self, codebook_size: int) -> None:
        if not 2 <= codebook_size <= MAX_CODEBOOK_SIZE:
            raise ValueError(
                f"codebook_size must be in [2, {MAX_CODEBOOK_SIZE}], "
                f"got {codebook_size}"
            )
        base, extra = divmod(1 << PRECISION, codebook_size)
        super().__init__([base + (i < extra) for i in range(codebook_size)])

    @property
    def bits_per_symbol(self) -> float:
        """Ideal rate log2 K of one symbol."""
        return math.log2(self.codebook_size)

    def likelihoods(self, symbols: Tensor) -> Tensor:
        """Probability 1/K of every symbol, shaped like ``symbols`` (float)."""
        return torch.full(
            symbols.shape,
            1.0 / self.codebook_size,
            dtype=torch.float32,
            device=symbols.device,
        )
