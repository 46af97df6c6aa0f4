"""rANS plumbing of :class:`~compressai_hqa.entropy_models.ContextCoder`.

Symbols are pushed to CompressAI's ``BufferedRansEncoder`` by their intervals
(:func:`push`) and decoded with ``RansDecoder.decode_stream`` under integer CDF
rows (:func:`decode_symbols`); equal rows of a batch are found once
(:func:`distinct`), so that each CDF is computed and converted once.
"""

from __future__ import annotations

import gc

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F

from compressai import ans
from torch import Tensor

from compressai_hqa.entropy_models.categorical import GUARD_SYMBOLS, PRECISION

__all__ = [
    "decode_symbols",
    "distinct",
    "distinct_keys",
    "gc_paused",
    "guard_cdf",
    "push",
    "push_guards",
    "single_thread",
]

_TOTAL = 1 << PRECISION
_GUARD_CDF = [0, _TOTAL - 1, _TOTAL, _TOTAL]
_PUSH = 1 << 16  # symbols per call of the encoder
_DECODE = 1 << 10  # symbols per call of the decoder
_SMALL = 256  # fewer rows than this are not searched for equal ones
# random odd multipliers of a hash of context rows (wrapping int64 arithmetic)
_HASH = torch.randint(
    1 << 40, 1 << 62, (80,), generator=torch.Generator().manual_seed(0)
)
_HASH |= 1


@contextmanager
def single_thread() -> Iterator[None]:
    """One intra-op thread inside, the caller's thread count restored after.

    The setting is process-wide (``torch.set_num_threads``): other threads
    running PyTorch meanwhile get one thread too. The context coder runs many
    small operations per step, which more threads slow down (waiting for each
    other), badly so on a busy machine.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def guard_cdf() -> list[int]:
    """The CDF of the guard symbols (symbol 0 almost certain).

    Returns:
        The CDF as a list.
    """
    return list(_GUARD_CDF)


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while millions of int lists are built."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def distinct(rows: Tensor) -> tuple[Tensor, Tensor]:
    """Indices of one of each distinct row of ``rows`` (N, D) int64, and the
    distinct row of every row (N,): ``rows[rep][inverse]`` equals ``rows``."""
    if len(rows) < _SMALL:  # not worth it
        return torch.arange(len(rows)), torch.arange(len(rows))
    key = (rows * _HASH[: rows.shape[1]]).sum(1)
    _, inverse = torch.unique(key, return_inverse=True)
    rep = torch.empty(int(inverse.max()) + 1, dtype=torch.int64)
    rep.scatter_(0, inverse, torch.arange(len(rows)))
    same = rows.index_select(0, rep).index_select(0, inverse)
    if not torch.equal(same, rows):  # a collision of the hash
        return torch.arange(len(rows)), torch.arange(len(rows))
    return rep, inverse


def distinct_keys(key: Tensor) -> tuple[Tensor, Tensor]:
    """:func:`distinct` of int64 keys (N,), the distinct keys in increasing order."""
    _, inverse = torch.unique(key, return_inverse=True)
    rep = torch.empty(int(inverse.max()) + 1 if len(key) else 0, dtype=torch.int64)
    rep.scatter_(0, inverse, torch.arange(len(key)))
    return rep, inverse


def decode_symbols(
    decoder: ans.RansDecoder,
    encoder: ans.BufferedRansEncoder,
    cdf: Tensor,
    index: Tensor,
) -> Tensor:
    """Symbol i under CDF row ``index[i]``, decoded and pushed to the re-encoder.

    The rows go to ``decode_stream`` as Python lists, :data:`_DECODE` symbols at
    a time: small lists are built and freed in memory that stays in the cache
    (converting a whole step's rows at once takes twice as long per row).
    """
    rows = F.pad(cdf, (0, 1), value=_TOTAL).numpy()  # escape of width 0
    size = cdf.shape[1] + 1
    order = index.numpy()
    decoded: list[int] = []
    for i in range(0, len(order), _DECODE):
        part = rows[order[i : i + _DECODE]].tolist()
        n = len(part)
        decoded += decoder.decode_stream(list(range(n)), part, [size] * n, [0] * n)
    symbols = torch.from_numpy(np.array(decoded, dtype=np.int64))
    flat = cdf.view(-1)
    at = index * cdf.shape[1] + symbols
    start = flat.index_select(0, at)
    push(encoder, start, flat.index_select(0, at + 1) - start, check=False)
    return symbols


def push(
    encoder: ans.BufferedRansEncoder, starts: Tensor, freqs: Tensor, check: bool = True
) -> None:
    """Symbols given by their intervals (start, frequency), in stream order
    (``check=False``: intervals of decoded symbols, valid by construction)."""
    if check and bool(
        (freqs < 1).any() | (starts < 0).any() | (starts + freqs > _TOTAL).any()
    ):
        raise RuntimeError("invalid rANS interval")  # a bug, never bad data
    for i in range(0, starts.numel(), _PUSH):
        s, f = starts[i : i + _PUSH], freqs[i : i + _PUSH]
        n = s.numel()
        table = F.pad(torch.stack([s, s + f], 1).reshape(-1), (0, 2), value=_TOTAL)
        symbols = list(range(0, 2 * n, 2))
        encoder.encode_with_indexes(
            symbols, [0] * n, [table.tolist()], [2 * n + 2], [0]
        )


def push_guards(encoder: ans.BufferedRansEncoder) -> None:
    encoder.encode_with_indexes(
        [0] * GUARD_SYMBOLS, [0] * GUARD_SYMBOLS, [_GUARD_CDF], [len(_GUARD_CDF)], [0]
    )
