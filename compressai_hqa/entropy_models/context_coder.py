"""Code maps under a :class:`ContextModel`: one rANS stream for many images.

Stream order. A code at row y, column x of its map is decoded at *step*
``t = x + (c + 1) y``, where ``c`` is how far right the model's neighbourhood
reaches in the rows above (0 if it does not): every neighbour of a code is in an
earlier step, so all codes of a step, in every map of the file, are decoded
together. Step after step, the stream holds the group symbols of the step's
codes, ordered by row y and then by map (file order), then their member symbols
in the same order; then :data:`GUARD_SYMBOLS` guard symbols (see
:mod:`~compressai_hqa.entropy_models.categorical`). The decoder's work is one
batch per step, as many steps as the largest map has (61 for 16 x 16 maps with
``c = 2``, whatever the number and sizes of the images), and a constant cost per
code.

Each symbol is one CompressAI rANS symbol (16-bit precision) under the integer
frequencies of :class:`ContextModel`: decoding hands
``compressai.ans.RansDecoder.decode_stream`` each symbol's CDF
``[0, c_1, ..., 65536, 65536]`` (an escape slot of zero width, so the decoder
never enters bypass mode and reads at most one 32-bit word per symbol); codes of
a step with equal neighbourhoods and positions share one CDF. rANS encodes a
symbol from its interval alone (start ``c``, frequency ``f``: the encoder reads
``cdf[s]`` and ``cdf[s + 1]`` of its table and nothing else), so
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
:class:`~compressai_hqa.CorruptStreamError`. The model runs on the CPU.
"""

from __future__ import annotations

import math

from collections.abc import Iterator, Mapping, Sequence
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from compressai import ans
from torch import Tensor

from compressai_hqa.entropy_models.categorical import GUARD_SYMBOLS, PRECISION
from compressai_hqa.entropy_models.context import ContextModel, min_symbol_bits
from compressai_hqa.entropy_models.context_rans import (
    decode_symbols,
    distinct,
    distinct_keys,
    gc_paused,
    guard_cdf,
    push,
    push_guards,
    single_thread,
)
from compressai_hqa.errors import CorruptStreamError

__all__ = ["ContextCoder", "Schedule"]

# Estimated bytes per code of a file (encoding, decoding) and per code of the
# largest step (decoding), measured peaks with a margin (see decode_bytes).
_ENCODE_BYTES, _DECODE_BYTES, _STEP_BYTES = 256, 256, 4096

_ROUNDING_BITS = 1e-4  # per symbol, what rANS's integer state update can save


class Schedule(NamedTuple):
    """Where every code of a file is, in stream order.

    Attributes:
        index: (n,) position of each code in the flat codes (map after map).
        image: (n,) its map.
        y, x: (n,) its row and column.
        steps: codes per step (the step boundaries of the arrays above).
    """

    index: Tensor
    image: Tensor
    y: Tensor
    x: Tensor
    steps: list[int]


class ContextCoder:
    """Codes maps of codes under a context model (see the module doc).

    Args:
        model: the layer's :class:`ContextModel`.
        batch_size: most rows the network evaluates at once; any value gives
            the same bytes and codes.
    """

    def __init__(self, model: ContextModel, batch_size: int = 4096) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model = model
        self.batch_size = int(batch_size)

    @property
    def codebook_size(self) -> int:
        """Number of codes K."""
        return self.model.codebook_size

    # ---------------------------------------------------------------- layout
    def schedule(self, shapes: Sequence[tuple[int, int]]) -> Schedule:
        """The stream order of the codes of maps of ``shapes`` (see the module doc)."""
        size = torch.tensor(list(shapes), dtype=torch.int64).reshape(-1, 2)
        count = size.prod(1)
        image = torch.repeat_interleave(torch.arange(len(size)), count)
        first = torch.cumsum(count, 0) - count
        local = torch.arange(len(image)) - first.index_select(0, image)
        width = size[:, 1].index_select(0, image)
        y, x = local // width, local % width
        step = x + (self.model.reach[2] + 1) * y
        rows = int(size[:, 0].max()) if len(size) else 0
        order = torch.argsort((step * rows + y) * len(size) + image)
        steps = [n for n in torch.bincount(step).tolist() if n]
        image, y, x = (a.index_select(0, order) for a in (image, y, x))
        return Schedule(order, image, y, x, steps)

    @staticmethod
    def encode_bytes(codes: int) -> int:
        """Estimated peak bytes of :meth:`encode` of ``codes`` codes.

        Args:
            codes: the number of codes of the file.

        Returns:
            Bytes (the codes, their intervals, the stream order, the stream).
        """
        return _ENCODE_BYTES * int(codes)

    def decode_bytes(self, shapes: Mapping[tuple[int, int], int]) -> int:
        """Estimated peak bytes of :meth:`decode` of maps of these shapes.

        Args:
            shapes: (h, w) -> number of maps of that shape.

        Returns:
            Bytes: per code of the file (the schedule, the padded maps, the
            decoded codes, the re-encoder, the padded stream) and per code of
            the largest step (its neighbourhoods, features, CDF rows and their
            Python lists), a bound computed without the schedule.
        """
        c = self.model.reach[2] + 1
        total = sum(h * w * n for (h, w), n in shapes.items())
        step = sum(min(h, -(-w // c)) * n for (h, w), n in shapes.items())
        return _DECODE_BYTES * total + _STEP_BYTES * min(step, total)

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
        with single_thread():
            starts, freqs = self._intervals(codes, shapes)
            order = self._stream_order(shapes)
        encoder = ans.BufferedRansEncoder()
        with gc_paused():
            push(
                encoder,
                starts.view(-1).index_select(0, order),
                freqs.view(-1).index_select(0, order),
            )
            push_guards(encoder)
            return encoder.flush()

    def bits(self, codes: np.ndarray, shapes: Sequence[tuple[int, int]]) -> float:
        """Ideal rate in bits of the maps (the stream without its rANS framing)."""
        _, freqs = self._intervals(codes, shapes)
        return float((PRECISION - torch.log2(freqs.double())).sum())

    def _stream_order(self, shapes: Sequence[tuple[int, int]]) -> Tensor:
        """Indices into (2, n) symbol arrays (group, member) in stream order."""
        plan = self.schedule(shapes)
        n = len(plan.index)
        ends = torch.tensor(plan.steps, dtype=torch.int64).cumsum(0)
        parts = []
        for end, k in zip(ends.tolist(), plan.steps, strict=True):
            part = plan.index[end - k : end]
            parts += [part, part + n]  # the step's groups, then its members
        return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.int64)

    def _intervals(
        self, codes: np.ndarray, shapes: Sequence[tuple[int, int]]
    ) -> tuple[Tensor, Tensor]:
        """(start, frequency) of the group and member symbol of every code, (2, n)."""
        flat = torch.as_tensor(np.asarray(codes, dtype=np.int64)).reshape(-1)
        if sum(h * w for h, w in shapes) != flat.numel():
            raise ValueError("the codes do not hold the maps of these shapes")
        if flat.numel() and (flat.min() < 0 or flat.max() >= self.codebook_size):
            raise ValueError(f"codes must be in [0, {self.codebook_size})")
        model = self.model
        starts = torch.empty(2, flat.numel(), dtype=torch.int64)
        freqs = torch.empty_like(starts)
        offset = 0
        for h, w, count in _runs(shapes):
            y, x = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
            position = model.positions(y.reshape(-1), x.reshape(-1))
            per = max(1, self.batch_size // (h * w))
            for i in range(0, count, per):
                n = min(per, count - i) * h * w
                maps = flat[offset : offset + n].view(-1, h, w)
                feats = model.features(
                    _all_contexts(model, maps), position.repeat(len(maps))
                )
                symbols = model.symbols.index_select(0, maps.reshape(-1))
                group, member = symbols // model.members, symbols % model.members
                stages = ((model.group_cdf(feats), group),
                          (model.member_cdf(feats, group), member))  # fmt: skip
                for stage, (cdf, s) in enumerate(stages):
                    start = cdf.gather(1, s[:, None]).squeeze(1)
                    starts[stage, offset : offset + n] = start
                    freqs[stage, offset : offset + n] = (
                        cdf.gather(1, s[:, None] + 1).squeeze(1) - start
                    )
                offset += n
        return starts, freqs

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
        with gc_paused(), single_thread():
            out = self._decode_steps(decoder, encoder, shapes)
        guards = decoder.decode_stream(
            [0] * GUARD_SYMBOLS, [guard_cdf()], [len(guard_cdf())], [0]
        )
        if any(guards):
            raise CorruptStreamError("corrupt bitstream: invalid guard symbols")
        push_guards(encoder)
        if encoder.flush() != stream:
            raise CorruptStreamError(
                "corrupt bitstream: the bytes are not the encoding of the codes "
                "they decode to (truncated, extended or altered)"
            )
        return out.numpy()

    def _decode_steps(
        self,
        decoder: ans.RansDecoder,
        encoder: ans.BufferedRansEncoder,
        shapes: Sequence[tuple[int, int]],
    ) -> Tensor:
        model = self.model
        plan = self.schedule(shapes)
        top, left, right = model.reach
        size = torch.tensor(list(shapes), dtype=torch.int64).reshape(-1, 2)
        width = left + size[:, 1] + right  # every map padded by its own border
        cells = (top + size[:, 0]) * width
        base = torch.cumsum(cells, 0) - cells
        canvas = torch.full((int(cells.sum()),), model.codebook_size)
        dy = torch.tensor([o[0] for o in model.offsets])
        dx = torch.tensor([o[1] for o in model.offsets])
        out = torch.empty(len(plan.index), dtype=torch.int64)
        end = 0
        for k in plan.steps:
            image, y, x = (a[end : end + k] for a in (plan.image, plan.y, plan.x))
            row = width.index_select(0, image)
            cell = base.index_select(0, image).add_((top + y) * row + left + x)
            where = cell[:, None] + dy * row[:, None] + dx
            context = canvas.take(where)
            codes = self._decode_step(decoder, encoder, context, model.positions(y, x))
            canvas.index_copy_(0, cell, codes)
            out.index_copy_(0, plan.index[end : end + k], codes)
            end += k
        return out

    def _decode_step(
        self,
        decoder: ans.RansDecoder,
        encoder: ans.BufferedRansEncoder,
        context: Tensor,
        position: Tensor,
    ) -> Tensor:
        """The codes of one step, from their neighbours (k, S) and positions (k,)."""
        model = self.model
        # equal neighbourhoods have equal CDFs: evaluate and convert each once
        rep, inverse = distinct(torch.cat([context, position[:, None]], 1))
        feats, cdfs = [], []
        for r in torch.split(rep, self.batch_size):
            feats.append(
                model.features(context.index_select(0, r), position.index_select(0, r))
            )
            cdfs.append(model.group_cdf(feats[-1]))
        group = decode_symbols(decoder, encoder, torch.cat(cdfs), inverse)
        if int(group.max()) >= model.groups:
            raise CorruptStreamError("corrupt bitstream: invalid group symbol")
        # one member CDF per distinct (group, neighbourhood), in group order
        rep2, inverse2 = distinct_keys(group * len(rep) + inverse)
        features = torch.cat(feats).index_select(0, inverse.index_select(0, rep2))
        groups = group.index_select(0, rep2)
        cdf = torch.cat(
            [
                model.member_cdf(features[r], groups[r])
                for r in _slices(len(rep2), self.batch_size)
            ]
        )
        member = decode_symbols(decoder, encoder, cdf, inverse2)
        if int(member.max()) >= model.members:
            raise CorruptStreamError("corrupt bitstream: invalid member symbol")
        return model.codes.index_select(0, group * model.members + member)


def _slices(n: int, size: int) -> list[slice]:
    """``slice``s of at most ``size`` covering ``range(n)``."""
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def _runs(shapes: Sequence[tuple[int, int]]) -> Iterator[tuple[int, int, int]]:
    """(h, w, number of maps) of every run of consecutive maps of one shape."""
    start = 0
    while start < len(shapes):
        end = start + 1
        while end < len(shapes) and shapes[end] == shapes[start]:
            end += 1
        yield int(shapes[start][0]), int(shapes[start][1]), end - start
        start = end


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
