"""A context model of a layer's code map whose probabilities are integers.

:class:`ContextModel` predicts each code of a code map from a causal
neighbourhood of codes already decoded (raster order) and from its position,
with a small network evaluated at one position at a time: an embedding of each
neighbour (one table per neighbour slot, row ``K`` for "outside the map") and of
the position, summed, then affine layers, then two heads. A code is coded as two
symbols: its *group* (one of ``G``) and its *member* within the group (one of
``M = K / G``), through a fixed permutation ``symbols`` of the codes
(``symbol = group * M + member``); the member head uses the decoded group.

Everything is an integer, and every value is computed exactly on any machine::

    z   = position[p] + sum_j embedding[j, c_j]
    a   = clamp(z >> input_shift, 0, 255)
    a   = clamp((W a + b) >> shift, 0, 255)            for each hidden layer
    l_g = W_g a + b_g;  l_m = W_m[g] a + b_m[g]         (group, member logits)

Weights are at most 127 and activations at most 255 in magnitude, so every
operand of a matrix product is exact in float32, TF32 and bfloat16, and every
row's worst-case partial sum (checked when the model is built) is below
``2^24``, so float32 accumulation is exact in any order: BLAS, thread count,
batch composition and device cannot change a value. Logits become 16-bit
frequencies with integer arithmetic and a stored table of ``exp``
(:func:`~compressai_hqa.entropy_models.context_cdf.integer_cdf`). Shifts are
floor divisions by powers of two.

The probabilities of a symbol are ``f / 65536`` with every ``f`` at least a
floor (any code stays codable, and no symbol is nearly certain) and
``sum(f) = 65536``; they drive CompressAI's rANS coder in
:mod:`compressai_hqa.entropy_models.context_coder`.
"""

from __future__ import annotations

import hashlib

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import torch
import torch.nn.functional as F

from torch import Tensor

from compressai_hqa.entropy_models.context_cdf import (
    EXP_ONE,
    FLOOR_TOTAL,
    floor_frequency,
    integer_cdf,
    min_symbol_bits,
)

__all__ = [
    "ACTIVATION_MAX",
    "EXACT_LIMIT",
    "EXP_ONE",
    "FLOOR_TOTAL",
    "WEIGHT_MAX",
    "Affine",
    "ContextModel",
    "floor_frequency",
    "integer_cdf",
    "min_symbol_bits",
]

ACTIVATION_MAX = 255
WEIGHT_MAX = 127
#: Integers below this are exact in float32, and so are their sums below it.
EXACT_LIMIT = 1 << 24
_MAX_SHIFT = 30
_FORMAT = "compressai_hqa context model/1"


def _check_int_tensor(name: str, value: Any, shape: tuple[int, ...]) -> None:
    if not isinstance(value, Tensor) or value.dtype != torch.int64:
        raise ValueError(f"context model: {name} must be an int64 tensor")
    if tuple(value.shape) != shape:
        raise ValueError(
            f"context model: {name} has shape {tuple(value.shape)}, expected {shape}"
        )


@dataclass(frozen=True, eq=False)
class Affine:
    """An integer affine layer ``(weight @ a + bias) >> shift``.

    Attributes:
        weight: (out, in) int64, entries in [-127, 127].
        bias: (out,) int64.
        shift: floor-division exponent of the output (0 for the heads).
    """

    weight: Tensor
    bias: Tensor
    shift: int = 0

    def check(self, name: str, fan_in: int) -> None:
        """Raises ValueError unless the layer is exact for inputs in [0, 255]."""
        out = self.weight.shape[0] if self.weight.dim() == 2 else -1
        _check_int_tensor(f"{name}.weight", self.weight, (out, fan_in))
        _check_int_tensor(f"{name}.bias", self.bias, (out,))
        if not 0 <= int(self.shift) <= _MAX_SHIFT:
            raise ValueError(f"context model: {name}.shift {self.shift} out of range")
        if self.weight.numel() and int(self.weight.abs().max()) > WEIGHT_MAX:
            raise ValueError(f"context model: {name} has weights above {WEIGHT_MAX}")
        worst = self.weight.abs().sum(1) * ACTIVATION_MAX + self.bias.abs()
        if worst.numel() and int(worst.max()) >= EXACT_LIMIT:
            raise ValueError(
                f"context model: {name} can reach {int(worst.max())}, not exact in "
                "float32 (limit 2^24)"
            )

    @cached_property
    def _float(self) -> tuple[Tensor, Tensor]:
        return self.weight.float(), self.bias.float()

    def __call__(
        self, a: Tensor, rows: slice = slice(None), out: Tensor | None = None
    ) -> Tensor:
        """The integer-valued float32 output (of output ``rows``), before the shift."""
        weight, bias = self._float
        return torch.addmm(bias[rows], a, weight[rows].t(), out=out)


@dataclass(frozen=True, eq=False)
class ContextModel:
    """The integer context model of one layer's code map (see the module doc).

    Attributes:
        codebook_size: number of codes K.
        groups: number of groups G (a divisor of K).
        offsets: the causal neighbours (dy, dx) of a code: dy < 0, or dy = 0
            and dx < 0.
        grid: (rows, cols) of the position table; a code at (y, x) uses
            position ``min(y, rows - 1) * cols + min(x, cols - 1)``.
        symbols: (K,) int64 permutation: code -> ``group * M + member``.
        embedding: (S, K + 1, H) int64, one table per neighbour slot.
        position: (rows * cols, H) int64 (the first layer's bias included).
        input_shift: floor-division exponent of the embedding sum.
        hidden: the hidden affine layers (H -> H).
        group_head: (G, H) affine layer of the group logits.
        member_head: (K, H) affine layer of the member logits, rows in symbol
            order (rows ``g * M`` to ``g * M + M - 1`` for group g).
        logit_shift: floor-division exponent of the logit differences.
        exp_table: (T,) int64 weights of the logit differences.

    Raises:
        ValueError: a table has the wrong type, shape or range, or a sum could
            leave the exact range of float32.
    """

    codebook_size: int
    groups: int
    offsets: tuple[tuple[int, int], ...]
    grid: tuple[int, int]
    symbols: Tensor
    embedding: Tensor
    position: Tensor
    input_shift: int
    hidden: tuple[Affine, ...]
    group_head: Affine
    member_head: Affine
    logit_shift: int
    exp_table: Tensor

    def __post_init__(self) -> None:
        _check_model(self)

    # ------------------------------------------------------------- properties
    @property
    def members(self) -> int:
        """Codes per group M."""
        return self.codebook_size // self.groups

    @property
    def width(self) -> int:
        """Hidden width H."""
        return self.position.shape[1]

    @property
    def reach(self) -> tuple[int, int, int]:
        """Rows above, columns left and columns right that the offsets reach."""
        return (
            max(-dy for dy, _ in self.offsets),
            max([0] + [-dx for _, dx in self.offsets]),
            max([0] + [dx for _, dx in self.offsets]),
        )

    @cached_property
    def codes(self) -> Tensor:
        """(K,) int64 inverse of :attr:`symbols`: symbol -> code."""
        return torch.argsort(self.symbols)

    @cached_property
    def _tables(self) -> tuple[Tensor, Tensor, Tensor]:
        s, rows, h = self.embedding.shape
        slots = torch.arange(s, dtype=torch.int64).unsqueeze(0) * rows
        return self.embedding.reshape(s * rows, h).float(), self.position.float(), slots

    # -------------------------------------------------------------- network
    def positions(self, y: Tensor, x: Tensor) -> Tensor:
        """Index into :attr:`position` of codes at rows ``y``, columns ``x``."""
        rows, cols = self.grid
        return y.clamp(max=rows - 1) * cols + x.clamp(max=cols - 1)

    def features(self, context: Tensor, position: Tensor) -> Tensor:
        """Last hidden activations (N, H), integer-valued float32 in [0, 255].

        Args:
            context: (N, S) int64 neighbour codes in [0, K] (K: outside the map).
            position: (N,) int64 indices into :attr:`position`.
        """
        table, positions, slots = self._tables
        z = F.embedding_bag(context + slots, table, mode="sum")
        z.add_(positions.index_select(0, position))
        a = _requantize(z, self.input_shift)
        for layer in self.hidden:
            a = _requantize(layer(a), layer.shift)
        return a

    def group_cdf(self, features: Tensor) -> Tensor:
        """(N, G + 1) int64 16-bit CDFs of each code's group (:func:`integer_cdf`)."""
        logits = self.group_head(features).long()
        return integer_cdf(logits, self.logit_shift, self.exp_table)

    def member_cdf(self, features: Tensor, group: Tensor) -> Tensor:
        """(N, M + 1) int64 16-bit CDFs of the member, given the group (N,)."""
        m = self.members
        ordered = bool((group[1:] >= group[:-1]).all())
        order = None if ordered else torch.argsort(group, stable=True)
        if order is not None:  # rows of one group together
            features = features.index_select(0, order)
        out, start = features.new_empty(len(group), m), 0
        for g, n in enumerate(torch.bincount(group, minlength=self.groups).tolist()):
            if n:
                rows = slice(start, start + n)
                self.member_head(features[rows], slice(g * m, g * m + m), out[rows])
                start += n
        if order is not None:
            out = torch.empty_like(out).index_copy_(0, order, out)
        return integer_cdf(out.long(), self.logit_shift, self.exp_table)

    # ------------------------------------------------------------ identity
    def state(self) -> dict[str, Any]:
        """Plain values and integer tensors (``torch.save``, ``weights_only``
        loads), each stored in the narrowest integer type that holds it."""
        c = _narrow
        return {
            "format": _FORMAT,
            "codebook_size": self.codebook_size,
            "groups": self.groups,
            "offsets": [list(o) for o in self.offsets],
            "grid": list(self.grid),
            "symbols": c(self.symbols),
            "embedding": c(self.embedding),
            "position": c(self.position),
            "input_shift": self.input_shift,
            "hidden": [[c(a.weight), c(a.bias), a.shift] for a in self.hidden],
            "group_head": [c(self.group_head.weight), c(self.group_head.bias)],
            "member_head": [c(self.member_head.weight), c(self.member_head.bias)],
            "logit_shift": self.logit_shift,
            "exp_table": c(self.exp_table),
        }

    @classmethod
    def from_state(cls, state: Any) -> ContextModel:
        """Inverse of :meth:`state`.

        Raises:
            ValueError: not the state of a valid context model.
        """
        w = _widen
        try:
            if state["format"] != _FORMAT:
                raise ValueError(f"unknown context model format {state['format']!r}")
            return cls(
                codebook_size=int(state["codebook_size"]),
                groups=int(state["groups"]),
                offsets=tuple((int(dy), int(dx)) for dy, dx in state["offsets"]),
                grid=(int(state["grid"][0]), int(state["grid"][1])),
                symbols=w(state["symbols"]),
                embedding=w(state["embedding"]),
                position=w(state["position"]),
                input_shift=int(state["input_shift"]),
                hidden=tuple(Affine(w(a), w(b), int(s)) for a, b, s in state["hidden"]),
                group_head=Affine(*map(w, state["group_head"])),
                member_head=Affine(*map(w, state["member_head"])),
                logit_shift=int(state["logit_shift"]),
                exp_table=w(state["exp_table"]),
            )
        except (KeyError, TypeError, IndexError) as err:
            raise ValueError(f"not a context model state: {err!r}") from None

    @cached_property
    def digest(self) -> bytes:
        """SHA-256 of every field (what a file coded with this model depends on)."""
        h = hashlib.sha256(_FORMAT.encode() + b"\0")
        for key, value in self.state().items():
            h.update(key.encode() + b"\0")
            for part in value if isinstance(value, list) else [value]:
                for item in part if isinstance(part, list) else [part]:
                    if isinstance(item, Tensor):
                        h.update(repr(tuple(item.shape)).encode())
                        h.update(item.contiguous().numpy().astype("<i8").tobytes())
                    else:
                        h.update(repr(item).encode() + b"\0")
        return h.digest()


_INTEGERS = (torch.int8, torch.int16, torch.int32, torch.int64)


def _narrow(t: Tensor) -> Tensor:
    """``t`` (int64) in the narrowest integer type that holds its values."""
    for dtype in _INTEGERS:
        info = torch.iinfo(dtype)
        if t.numel() == 0 or (info.min <= int(t.min()) and int(t.max()) <= info.max):
            return t.to(dtype)
    return t


def _widen(t: Any) -> Any:
    """Integer tensors as int64; anything else unchanged (then refused)."""
    return t.long() if isinstance(t, Tensor) and t.dtype in _INTEGERS else t


def _requantize(z: Tensor, shift: int) -> Tensor:
    """``clamp(z >> shift, 0, 255)`` of integer-valued float32 (exact)."""
    return z.mul_(2.0**-shift).floor_().clamp_(0, ACTIVATION_MAX)


def _check_model(m: ContextModel) -> None:
    k, g = m.codebook_size, m.groups
    if not (2 <= k <= 1 << 15 and 2 <= g <= k and k % g == 0 and k // g >= 2):
        raise ValueError(f"context model: {k} codes in {g} groups")
    offsets = m.offsets
    if not 1 <= len(offsets) <= 64 or len(set(offsets)) != len(offsets):
        raise ValueError("context model: 1 to 64 distinct neighbour offsets")
    for dy, dx in offsets:
        if not (dy < 0 or (dy == 0 and dx < 0)) or max(-dy, abs(dx)) > 64:
            raise ValueError(f"context model: offset {(dy, dx)} is not causal")
    rows, cols = m.grid
    if not (1 <= rows <= 4096 and 1 <= cols <= 4096):
        raise ValueError(f"context model: position grid {m.grid}")
    _check_int_tensor("symbols", m.symbols, (k,))
    if not torch.equal(torch.sort(m.symbols).values, torch.arange(k)):
        raise ValueError("context model: symbols is not a permutation")
    h = m.position.shape[1] if m.position.dim() == 2 else -1
    if not 1 <= h <= 1024:
        raise ValueError("context model: hidden width out of range")
    _check_int_tensor("embedding", m.embedding, (len(offsets), k + 1, h))
    _check_int_tensor("position", m.position, (rows * cols, h))
    largest = m.embedding.abs().amax((1, 2)).sum() + m.position.abs().max()
    if int(largest) >= EXACT_LIMIT:
        raise ValueError("context model: embedding sums leave the exact range")
    if not 0 <= m.input_shift <= _MAX_SHIFT or not 0 <= m.logit_shift <= _MAX_SHIFT:
        raise ValueError("context model: shift out of range")
    if len(m.hidden) > 8:
        raise ValueError("context model: at most 8 hidden layers")
    for i, layer in enumerate(m.hidden):
        layer.check(f"hidden[{i}]", h)
    m.group_head.check("group_head", h)
    m.member_head.check("member_head", h)
    if m.group_head.weight.shape[0] != g or m.member_head.weight.shape[0] != k:
        raise ValueError("context model: head sizes do not match the groups")
    table = m.exp_table
    if not isinstance(table, Tensor) or table.dtype != torch.int64 or table.dim() != 1:
        raise ValueError("context model: exp_table must be a 1-D int64 tensor")
    if not 2 <= table.numel() <= 1 << 16 or int(table[0]) != EXP_ONE:
        raise ValueError(f"context model: exp_table must start at {EXP_ONE}")
    if int(table.min()) < 0 or bool((table[1:] > table[:-1]).any()):
        raise ValueError("context model: exp_table must be non-increasing, >= 0")
