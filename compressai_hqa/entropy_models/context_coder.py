"""Code maps under a :class:`ContextModel`: one rANS stream for many images.

Stream order. The maps are cut into *blocks*: runs of at most :data:`BLOCK`
consecutive maps of one shape (h, w). Block after block, raster position after
raster position, the stream holds the group symbols of the position in all the
block's maps (in order), then their member symbols, then, after the last block,
:data:`GUARD_SYMBOLS` guard symbols (see
:mod:`~compressai_hqa.entropy_models.categorical`). So a decoder decodes all
maps of a block position by position, in batches, and every probability it
needs comes from codes it has already decoded.

Each symbol is one CompressAI rANS symbol (16-bit precision) under the integer
frequencies of :class:`ContextModel`: decoding hands
``compressai.ans.RansDecoder.decode_stream`` each symbol's CDF
``[0, f_0, f_0 + f_1, ..., 65536, 65536]`` (an escape slot of zero width, so the
decoder never enters bypass mode and reads at most one 32-bit word per symbol).
rANS encodes a symbol from its interval alone (start ``c``, frequency ``f``),
so the encoder (``BufferedRansEncoder``) is handed ``[0, c, c + f, 65536,
65536]`` and symbol 1: the same interval, the same bytes.

Decoding validates the stream's length first, decodes from a copy padded with
zero words (no read can leave it), checks the guards, and re-encodes what it
decoded: the bytes must be exactly the stream (trailing, missing or altered
bytes are refused). Every failure raises
:class:`~compressai_hqa.CorruptStreamError`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from compressai import ans
from torch import Tensor

from compressai_hqa.entropy_models.categorical import GUARD_SYMBOLS, PRECISION
from compressai_hqa.entropy_models.context import ContextModel
from compressai_hqa.errors import CorruptStreamError

__all__ = ["BLOCK", "ContextCoder"]

#: Maps of one shape coded position-major together.
BLOCK = 4096
_TOTAL = 1 << PRECISION
_GUARD_CDF = [0, _TOTAL - 1, _TOTAL, _TOTAL]
_PUSH = 1 << 16  # symbols per call of the encoder


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

    @staticmethod
    def max_stream_length(codes: int) -> int:
        """Bytes of the longest stream of ``codes`` codes (one word per symbol)."""
        return 8 + 4 * (2 * int(codes) + GUARD_SYMBOLS)

    # -------------------------------------------------------------- encoding
    def encode(self, codes: np.ndarray, shapes: Sequence[tuple[int, int]]) -> bytes:
        """One rANS stream of all maps: ``codes`` flat, map after map, row-major.

        Raises:
            ValueError: a code outside [0, K), or ``codes`` does not hold the
                maps of ``shapes``.
        """
        flat = torch.as_tensor(np.asarray(codes, dtype=np.int64)).reshape(-1)
        self._check(flat, shapes)
        encoder = ans.BufferedRansEncoder()
        offset = 0
        for first, count in self.blocks(shapes):
            h, w = shapes[first]
            n = count * h * w
            maps = flat[offset : offset + n].view(count, h, w)
            offset += n
            starts, freqs = self._intervals(maps)
            for i in range(0, starts.numel(), _PUSH):
                _push(encoder, starts[i : i + _PUSH], freqs[i : i + _PUSH])
        _push_guards(encoder)
        return encoder.flush()

    def bits(self, codes: np.ndarray, shapes: Sequence[tuple[int, int]]) -> float:
        """Ideal rate in bits of the maps (the stream without its rANS framing)."""
        flat = torch.as_tensor(np.asarray(codes, dtype=np.int64)).reshape(-1)
        self._check(flat, shapes)
        total, offset = 0.0, 0
        for first, count in self.blocks(shapes):
            h, w = shapes[first]
            n = count * h * w
            _, freqs = self._intervals(flat[offset : offset + n].view(count, h, w))
            offset += n
            total += float((PRECISION - torch.log2(freqs.double())).sum())
        return total

    def _intervals(self, maps: Tensor) -> tuple[Tensor, Tensor]:
        """(start, frequency) of every symbol of a block, in stream order."""
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
        return starts.reshape(-1), freqs.reshape(-1)

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
        longest = self.max_stream_length(total)
        if len(stream) < 8 or len(stream) % 4 or len(stream) > longest:
            raise CorruptStreamError(
                f"corrupt bitstream: {len(stream)} bytes (a stream of {total} codes "
                f"takes 8 + 4k bytes, at most {longest})"
            )
        decoder = ans.RansDecoder()
        decoder.set_stream(stream + bytes(longest + 8 - len(stream)))
        encoder = ans.BufferedRansEncoder()  # re-encodes what is decoded
        out = np.empty(total, dtype=np.int64)
        offset = 0
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
        canvas = torch.full(
            (count, top + h, left + w + right), model.codebook_size, dtype=torch.int64
        )
        dy = torch.tensor([o[0] for o in model.offsets]) + top
        dx = torch.tensor([o[1] for o in model.offsets]) + left
        index = list(range(count))
        for t in range(h * w):
            y, x = divmod(t, w)
            context = canvas[:, dy + y, dx + x]
            position = model.positions(torch.tensor([y]), torch.tensor([x]))
            feats = torch.cat(
                [
                    model.features(context[i : i + self.batch_size], position)
                    for i in range(0, count, self.batch_size)
                ]
            )
            group = _decode(decoder, encoder, model.group_cdf(feats), index)
            if int(group.max()) >= model.groups:
                raise CorruptStreamError("corrupt bitstream: invalid group symbol")
            member = _decode(decoder, encoder, model.member_cdf(feats, group), index)
            if int(member.max()) >= model.members:
                raise CorruptStreamError("corrupt bitstream: invalid member symbol")
            canvas[:, top + y, left + x] = model.codes[group * model.members + member]
        return canvas[:, top:, left : left + w].numpy()

    # --------------------------------------------------------------- helpers
    def _check(self, flat: Tensor, shapes: Sequence[tuple[int, int]]) -> None:
        if sum(h * w for h, w in shapes) != flat.numel():
            raise ValueError("the codes do not hold the maps of these shapes")
        if flat.numel() and (flat.min() < 0 or flat.max() >= self.codebook_size):
            raise ValueError(f"codes must be in [0, {self.codebook_size})")


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


def _decode(
    decoder: ans.RansDecoder,
    encoder: ans.BufferedRansEncoder,
    cdf: Tensor,
    index: list[int],
) -> Tensor:
    """One symbol per CDF row, decoded and pushed to the re-encoder."""
    cdfs = F.pad(cdf, (0, 1), value=_TOTAL).numpy().tolist()  # escape of width 0
    sizes = [cdf.shape[1] + 1] * len(index)
    offsets = [0] * len(index)
    symbols = decoder.decode_stream(index, cdfs, sizes, offsets)
    encoder.encode_with_indexes(symbols, index, cdfs, sizes, offsets)
    return torch.tensor(symbols, dtype=torch.int64)


def _push(encoder: ans.BufferedRansEncoder, starts: Tensor, freqs: Tensor) -> None:
    """Symbols given by their intervals (start, frequency), in stream order."""
    n = starts.numel()
    rows = torch.stack(
        [
            starts.new_zeros(n),
            starts,
            starts + freqs,
            *[starts.new_full((n,), _TOTAL)] * 2,
        ],
        1,
    )
    encoder.encode_with_indexes(
        [1] * n, list(range(n)), rows.numpy().tolist(), [5] * n, [0] * n
    )


def _push_guards(encoder: ans.BufferedRansEncoder) -> None:
    encoder.encode_with_indexes(
        [0] * GUARD_SYMBOLS, [0] * GUARD_SYMBOLS, [_GUARD_CDF], [len(_GUARD_CDF)], [0]
    )
