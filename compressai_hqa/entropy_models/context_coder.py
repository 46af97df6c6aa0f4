"""Code maps under a :class:`ContextModel`: one rANS stream for many images.

Stream order. The maps are cut into *blocks*: runs of at most :data:`BLOCK`
consecutive maps of one shape (h, w). A code at row y, column x of a map is
decoded at *step* ``t = x + (c + 1) y``, where ``c`` is how far right the
model's neighbourhood reaches in the rows above: every neighbour of a code
belongs to an earlier step, so all codes of a step (a diagonal of the map, in
all maps of the block) are decoded together. Block after block, step after
step, the stream holds the group symbols of the step's codes (position by
position in increasing y, each position in all the block's maps in order), then
their member symbols in the same order; after the last block,
:data:`GUARD_SYMBOLS` guard symbols (see
:mod:`~compressai_hqa.entropy_models.categorical`). A 16 x 16 map with ``c = 2``
takes 61 steps, not 256.

Each symbol is one CompressAI rANS symbol (16-bit precision) under the integer
frequencies of :class:`ContextModel`: decoding hands
``compressai.ans.RansDecoder.decode_stream`` each symbol's CDF
``[0, c_1, ..., 65536, 65536]`` (an escape slot of zero width, so the decoder
never enters bypass mode and reads at most one 32-bit word per symbol). rANS
encodes a symbol from its interval alone (start ``c``, frequency ``f``: the
encoder reads ``cdf[s]`` and ``cdf[s + 1]`` of its table and nothing else), so
``BufferedRansEncoder`` is handed the intervals of up to 65,536 symbols as one
table ``[c_0, c_0 + f_0, c_1, c_1 + f_1, ..., 65536, 65536]`` and symbols
``0, 2, 4, ...``: the same intervals, the same bytes, without a Python list per
symbol. Every interval is checked to lie in [0, 65536] with ``f >= 1`` first.

Decoding validates the stream's length first (at most one word per symbol, and
at least :func:`~compressai_hqa.entropy_models.context.min_symbol_bits` per
symbol, so that a short stream cannot claim a huge number of codes), decodes
from a copy padded with zero words (no read can leave it), checks the guards,
and re-encodes what it decoded: the bytes must be exactly the stream (trailing,
missing or altered bytes are refused). Every failure raises
:class:`~compressai_hqa.CorruptStreamError`.
"""

from __future__ import annotations

import gc
import math

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F

from compressai import ans
from torch import Tensor

from compressai_hqa.entropy_models.categorical import GUARD_SYMBOLS, PRECISION
from compressai_hqa.entropy_models.context import ContextModel, min_symbol_bits
from compressai_hqa.errors import CorruptStreamError

__all__ = ["BLOCK", "ContextCoder"]

#: Maps of one shape coded together.
BLOCK = 4096
_TOTAL = 1 << PRECISION
_GUARD_CDF = [0, _TOTAL - 1, _TOTAL, _TOTAL]
_PUSH = 1 << 16  # symbols per call of the encoder
_ROUNDING_BITS = 1e-4  # per symbol, what rANS's integer state update can save
# random odd multipliers of a hash of context rows (wrapping int64 arithmetic)
_HASH = (
    torch.randint(1 << 40, 1 << 62, (80,), generator=torch.Generator().manual_seed(0))
    | 1
)


class ContextCoder:
    """Codes maps of codes under a context model (see the module doc).

    Args:
        model: the layer's :class:`ContextModel`.
        batch_size: most rows the network evaluates at once; any value gives
            the same bytes and codes.
    """

    def __init__(self, model: ContextModel, batch_size: int = 1 << 16) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model = model
        self.batch_size = int(batch_size)

    @property
    def codebook_size(self) -> int:
        """Number of codes K."""
        return self.model.codebook_size

    # ---------------------------------------------------------------- layout
    @staticmethod
    def blocks(shapes: Sequence[tuple[int, int]]) -> Iterator[tuple[int, int]]:
        """(first map, number of maps) of every block of ``shapes``."""
        start = 0
        while start < len(shapes):
            end = start + 1
            while end < len(shapes) and end - start < BLOCK:
                if shapes[end] != shapes[start]:
                    break
                end += 1
            yield start, end - start
            start = end

    def steps(self, h: int, w: int) -> list[Tensor]:
        """Raster indices of the codes of each step of an h x w map, by row."""
        right = self.model.reach[2]
        y, x = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        step = (x + (right + 1) * y).reshape(-1)
        order = torch.argsort(step * h + y.reshape(-1))
        parts = torch.split(order, torch.bincount(step).tolist())
        return [p for p in parts if p.numel()]  # narrow maps skip some steps

    @staticmethod
    def max_stream_length(codes: int) -> int:
        """Bytes of the longest stream of ``codes`` codes (one word per symbol)."""
        return 8 + 4 * (2 * int(codes) + GUARD_SYMBOLS)

    def min_stream_length(self, codes: int) -> int:
        """Bytes of the shortest stream of ``codes`` codes (least cost per symbol)."""
        m = self.model
        least = min_symbol_bits(m.groups) + min_symbol_bits(m.members)
        bits = int(codes) * (least - 2 * _ROUNDING_BITS)
        return max(8, 4 * math.floor(bits / 32))

    # -------------------------------------------------------------- encoding
    def encode(self, codes: np.ndarray, shapes: Sequence[tuple[int, int]]) -> bytes:
        """One rANS stream of all maps: ``codes`` flat, map after map, row-major.

        Raises:
            ValueError: a code outside [0, K), or ``codes`` does not hold the
                maps of ``shapes``.
        """
        encoder = ans.BufferedRansEncoder()
        with _gc_paused():
            for (starts, freqs), _ in self._blocks(codes, shapes):
                _push(encoder, starts, freqs)
            _push_guards(encoder)
            return encoder.flush()

    def bits(self, codes: np.ndarray, shapes: Sequence[tuple[int, int]]) -> float:
        """Ideal rate in bits of the maps (the stream without its rANS framing)."""
        return sum(
            float((PRECISION - torch.log2(freqs.double())).sum())
            for (_, freqs), _ in self._blocks(codes, shapes)
        )

    def _blocks(
        self, codes: np.ndarray, shapes: Sequence[tuple[int, int]]
    ) -> Iterator[tuple[tuple[Tensor, Tensor], int]]:
        """(start, frequency) of every symbol of each block, in stream order."""
        flat = torch.as_tensor(np.asarray(codes, dtype=np.int64)).reshape(-1)
        if sum(h * w for h, w in shapes) != flat.numel():
            raise ValueError("the codes do not hold the maps of these shapes")
        if flat.numel() and (flat.min() < 0 or flat.max() >= self.codebook_size):
            raise ValueError(f"codes must be in [0, {self.codebook_size})")
        offset = 0
        for first, count in self.blocks(shapes):
            h, w = shapes[first]
            n = count * h * w
            yield self._intervals(flat[offset : offset + n].view(count, h, w)), n
            offset += n

    def _intervals(self, maps: Tensor) -> tuple[Tensor, Tensor]:
        count, h, w = maps.shape
        model = self.model
        symbols = model.symbols[maps.reshape(count, h * w)]
        group, member = symbols // model.members, symbols % model.members
        starts = torch.empty(h * w, 2, count, dtype=torch.int64)
        freqs = torch.empty_like(starts)
        per = max(1, self.batch_size // (h * w))
        y, x = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        position = model.positions(y.reshape(-1), x.reshape(-1))
        for i in range(0, count, per):
            j = min(i + per, count)
            context = _all_contexts(model, maps[i:j])
            feats = model.features(context, position.repeat(j - i))
            g, m = group[i:j].reshape(-1), member[i:j].reshape(-1)
            for stage, (cdf, s) in enumerate(
                ((model.group_cdf(feats), g), (model.member_cdf(feats, g), m))
            ):
                start = cdf.gather(1, s[:, None]).squeeze(1)
                freq = cdf.gather(1, s[:, None] + 1).squeeze(1) - start
                starts[:, stage, i:j] = start.view(j - i, h * w).t()
                freqs[:, stage, i:j] = freq.view(j - i, h * w).t()
        images = torch.arange(count)
        order = torch.cat(
            [
                (p.unsqueeze(1) * 2 * count + stage * count + images).reshape(-1)
                for p in self.steps(h, w)
                for stage in (0, 1)
            ]
        )
        return starts.reshape(-1)[order], freqs.reshape(-1)[order]

    # -------------------------------------------------------------- decoding
    def decode(self, stream: bytes, shapes: Sequence[tuple[int, int]]) -> np.ndarray:
        """All codes of a stream from :meth:`encode`, flat (int64), validated.

        Raises:
            CorruptStreamError: the stream is not bytes, cannot hold the maps of
                ``shapes``, or is not exactly what :meth:`encode` writes for the
                codes it decodes to.
        """
        if not isinstance(stream, (bytes, bytearray, memoryview)):
            raise CorruptStreamError(
                f"a bitstream must be bytes, got {type(stream).__name__}"
            )
        stream = bytes(stream)
        total = sum(h * w for h, w in shapes)
        low, high = self.min_stream_length(total), self.max_stream_length(total)
        if len(stream) % 4 or not low <= len(stream) <= high:
            raise CorruptStreamError(
                f"corrupt bitstream: {len(stream)} bytes (a stream of {total} codes "
                f"takes 8 + 4k bytes, {low} to {high})"
            )
        decoder = ans.RansDecoder()
        decoder.set_stream(stream + bytes(high + 8 - len(stream)))
        encoder = ans.BufferedRansEncoder()  # re-encodes what is decoded
        out = np.empty(total, dtype=np.int64)
        offset = 0
        with _gc_paused():
            for first, count in self.blocks(shapes):
                h, w = shapes[first]
                maps = self._decode_block(decoder, encoder, count, h, w)
                out[offset : offset + maps.size] = maps.reshape(-1)
                offset += maps.size
        guards = decoder.decode_stream(
            [0] * GUARD_SYMBOLS, [_GUARD_CDF], [len(_GUARD_CDF)], [0]
        )
        if any(guards):
            raise CorruptStreamError("corrupt bitstream: invalid guard symbols")
        _push_guards(encoder)
        if encoder.flush() != stream:
            raise CorruptStreamError(
                "corrupt bitstream: the bytes are not the encoding of the codes "
                "they decode to (truncated, extended or altered)"
            )
        return out

    def _decode_block(
        self,
        decoder: ans.RansDecoder,
        encoder: ans.BufferedRansEncoder,
        count: int,
        h: int,
        w: int,
    ) -> np.ndarray:
        model = self.model
        top, left, right = model.reach
        width = left + w + right
        # one row of the block's images per cell of the padded map
        canvas = torch.full(((top + h) * width, count), model.codebook_size)
        link = torch.tensor([dy * width + dx for dy, dx in model.offsets])
        for step in self.steps(h, w):
            y, x = step // w, step % w
            cells = (y + top) * width + x + left
            context = canvas.index_select(0, (cells[:, None] + link).reshape(-1))
            context = (
                context.view(len(y), -1, count).transpose(1, 2).reshape(-1, len(link))
            )
            position = model.positions(y, x).repeat_interleave(count)
            # equal contexts have equal CDFs: evaluate and convert each once
            rep, inverse = _distinct(torch.cat([context, position[:, None]], 1))
            size = self.batch_size
            feats = torch.cat(
                [
                    model.features(context[r], position[r])
                    for r in torch.split(rep, size)
                ]
            )
            group = _decode(decoder, encoder, model.group_cdf(feats), inverse)
            if int(group.max()) >= model.groups:
                raise CorruptStreamError("corrupt bitstream: invalid group symbol")
            pair = inverse * model.groups + group
            rep2, inverse2 = _distinct(pair[:, None])
            cdf = model.member_cdf(feats[inverse[rep2]], group[rep2])
            member = _decode(decoder, encoder, cdf, inverse2)
            if int(member.max()) >= model.members:
                raise CorruptStreamError("corrupt bitstream: invalid member symbol")
            codes = model.codes[group * model.members + member]
            canvas.index_copy_(0, cells, codes.view(len(y), count))
        maps = canvas.view(top + h, width, count)[top:, left : left + w]
        return maps.permute(2, 0, 1).numpy()


def _all_contexts(model: ContextModel, maps: Tensor) -> Tensor:
    """(B * h * w, S) neighbour codes of every position of ``maps`` (B, h, w)."""
    count, h, w = maps.shape
    top, left, right = model.reach
    canvas = F.pad(maps, (left, right, top, 0), value=model.codebook_size)
    parts = [
        canvas[:, top + dy : top + dy + h, left + dx : left + dx + w]
        for dy, dx in model.offsets
    ]
    return torch.stack(parts, -1).reshape(count * h * w, len(parts))


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while millions of int lists are built."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _distinct(rows: Tensor) -> tuple[Tensor, Tensor]:
    """Indices of one of each distinct row of ``rows`` (N, D) int64, and the
    distinct row of every row (N,): ``rows[rep][inverse]`` equals ``rows``."""
    key = (rows * _HASH[: rows.shape[1]]).sum(1)
    _, inverse = torch.unique(key, return_inverse=True)
    rep = torch.empty(int(inverse.max()) + 1, dtype=torch.int64)
    rep.scatter_(0, inverse, torch.arange(len(rows)))
    if not torch.equal(rows[rep][inverse], rows):  # a collision of the hash
        return torch.arange(len(rows)), torch.arange(len(rows))
    return rep, inverse


def _decode(
    decoder: ans.RansDecoder,
    encoder: ans.BufferedRansEncoder,
    cdf: Tensor,
    index: Tensor,
) -> Tensor:
    """Symbol i under CDF row ``index[i]``, decoded and pushed to the re-encoder."""
    cdfs = F.pad(cdf, (0, 1), value=_TOTAL).numpy().tolist()  # escape of width 0
    n = len(cdfs)
    decoded = decoder.decode_stream(
        index.tolist(), cdfs, [cdf.shape[1] + 1] * n, [0] * n
    )
    symbols = torch.from_numpy(np.array(decoded, dtype=np.int64))
    start = cdf[index, symbols]
    _push(encoder, start, cdf[index, symbols + 1] - start)
    return symbols


def _push(encoder: ans.BufferedRansEncoder, starts: Tensor, freqs: Tensor) -> None:
    """Symbols given by their intervals (start, frequency), in stream order."""
    if bool((freqs < 1).any() | (starts < 0).any() | (starts + freqs > _TOTAL).any()):
        raise RuntimeError("invalid rANS interval")  # a bug, never bad data
    for i in range(0, starts.numel(), _PUSH):
        s, f = starts[i : i + _PUSH], freqs[i : i + _PUSH]
        n = s.numel()
        table = F.pad(torch.stack([s, s + f], 1).reshape(-1), (0, 2), value=_TOTAL)
        symbols = list(range(0, 2 * n, 2))
        encoder.encode_with_indexes(
            symbols, [0] * n, [table.tolist()], [2 * n + 2], [0]
        )


def _push_guards(encoder: ans.BufferedRansEncoder) -> None:
    encoder.encode_with_indexes(
        [0] * GUARD_SYMBOLS, [0] * GUARD_SYMBOLS, [_GUARD_CDF], [len(_GUARD_CDF)], [0]
    )
