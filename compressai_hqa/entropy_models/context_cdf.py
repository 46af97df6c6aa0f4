"""Integer CDFs of integer logits: the probabilities of a context model.

A :class:`~compressai_hqa.entropy_models.context.ContextModel` turns its integer
logits into the 16-bit CDFs that drive CompressAI's rANS coder with
:func:`integer_cdf`: a stored table of ``exp`` and integer arithmetic only, so
that the same logits give the same CDF on every machine. Every symbol keeps a
floor frequency (:func:`floor_frequency`), so no symbol is nearly certain and
every symbol costs at least :func:`min_symbol_bits`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from torch import Tensor

__all__ = [
    "EXP_ONE",
    "FLOOR_TOTAL",
    "PRECISION",
    "floor_frequency",
    "integer_cdf",
    "min_symbol_bits",
]

PRECISION = 16
#: ``exp_table[0]``: the weight of the most likely symbol.
EXP_ONE = 1 << 20
#: The frequencies of n symbols reserve at least this much for their floors.
FLOOR_TOTAL = 256


def floor_frequency(n: int) -> int:
    """The least frequency of each of ``n`` symbols: ``max(1, 256 // n)``."""
    return max(1, FLOOR_TOTAL // n)


def min_symbol_bits(n: int) -> float:
    """The least cost in bits of a symbol of ``n`` (:func:`integer_cdf`)."""
    return PRECISION - math.log2((1 << PRECISION) - (n - 1) * floor_frequency(n))


def integer_cdf(logits: Tensor, shift: int, exp_table: Tensor) -> Tensor:
    """16-bit CDFs of integer logits: ``cdf[0] = 0``, ``cdf[n] = 2^16``.

    ``d = min((max(l) - l) >> shift, len(exp_table) - 1)``, ``w = exp_table[d]``,
    ``cdf[i] = i q + (2^16 - n q) (w_0 + ... + w_{i-1}) // sum(w)`` with the floor
    ``q = max(1, 256 // n)`` (:func:`floor_frequency`): symbol ``i`` has frequency
    ``cdf[i + 1] - cdf[i] >= q``, so no symbol is more likely than
    ``1 - (n - 1) q / 2^16`` and every symbol costs at least
    :func:`min_symbol_bits` (which bounds the codes a stream of a given length
    can hold). Integer arithmetic only.

    Args:
        logits: (N, n) int64 logits.
        shift: floor-division exponent of the logit differences.
        exp_table: (T,) int64, ``exp_table[0] = 2^20``, non-increasing, >= 0.

    Returns:
        (N, n + 1) int64 CDFs.
    """
    n = logits.shape[1]
    q = floor_frequency(n)
    top = logits.amax(1, keepdim=True)
    d = ((top - logits) >> shift).clamp_(max=exp_table.numel() - 1)
    cumulative = F.pad(exp_table.take(d).cumsum_(1), (1, 0))
    total = cumulative[:, -1:].clone()
    spare = (1 << PRECISION) - n * q
    return cumulative.mul_(spare).floor_divide_(total).add_(torch.arange(n + 1) * q)
