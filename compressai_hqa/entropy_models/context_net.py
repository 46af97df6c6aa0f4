"""The trainable twin of :class:`ContextModel`: float training, then integers.

:class:`ContextNet` has the structure of
:class:`~compressai_hqa.entropy_models.context.ContextModel` in floating point:
neighbour and position embeddings, affine layers with activations clamped to
``[0, 255 * STEP]``, a group head and a member head. It trains in two phases:

* **float**: plain training (activations ``clamp(x, 0, 255 * STEP)``);
* **quantised** (:meth:`ContextNet.quantize`, quantisation-aware training):
  every weight is rounded to an integer multiple ``2^-e`` (at most 127 of them;
  ``e`` per layer, fixed when the phase starts), every activation floored to a
  multiple of ``STEP = 2^-5``, every embedding to ``STEP / 16``, with straight-
  through gradients. The forward pass then computes, in integer-valued float32,
  exactly the integers of the exported model.

:meth:`ContextNet.export` returns those integers as a :class:`ContextModel`.
Embeddings may go through the layer's codebook (``codebook``): the embedding of
code ``c`` in slot ``j`` is ``free[j, c] + codebook[c] @ proj[j]``, so codes with
close codebook vectors start with close embeddings (rare codes generalise).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from torch import Tensor

from compressai_hqa.entropy_models.context import (
    ACTIVATION_MAX,
    EXP_ONE,
    WEIGHT_MAX,
    Affine,
    ContextModel,
)

__all__ = ["INPUT_SHIFT", "STEP", "STEPS_PER_NAT", "ContextNet", "codebook_groups"]

#: Activation step (a power of two): activations are integers times STEP.
STEP_BITS = 5
STEP = 2.0**-STEP_BITS
#: Embedding resolution: STEP / 2^INPUT_SHIFT.
INPUT_SHIFT = 4
#: Resolution of the exp table: logit differences in 1/16 nat.
STEPS_PER_NAT_BITS = 4
STEPS_PER_NAT = 1 << STEPS_PER_NAT_BITS
_EXP_ENTRIES = 256
_TOP = ACTIVATION_MAX * STEP


def _round(x: Tensor) -> Tensor:
    return x + (x.round() - x).detach()


def _floor(x: Tensor) -> Tensor:
    return x + (x.floor() - x).detach()


def codebook_groups(codebook: Tensor, groups: int) -> Tensor:
    """A permutation code -> ``group * M + member`` grouping close codebook vectors.

    Recursive bisection: codes are sorted along the first principal axis of
    their vectors and split in halves, ``log2(groups)`` times.

    Args:
        codebook: (K, D) codebook; K and ``groups`` powers of two, K > groups.
    """
    k = codebook.shape[0]
    if k & (k - 1) or groups & (groups - 1) or not 1 < groups < k:
        raise ValueError(f"cannot split {k} codes into {groups} equal groups")
    vectors = codebook.detach().double().cpu()
    parts = [torch.arange(k)]
    while len(parts) < groups:
        split = []
        for part in parts:
            x = vectors[part] - vectors[part].mean(0)
            axis = torch.linalg.svd(x, full_matrices=False).Vh[0]
            order = part[torch.argsort(x @ axis, stable=True)]
            half = len(order) // 2
            split += [order[:half], order[half:]]
        parts = split
    symbols = torch.empty(k, dtype=torch.int64)
    symbols[torch.cat(parts)] = torch.arange(k)
    return symbols


class ContextNet(nn.Module):
    """A context model in floating point (see the module doc).

    Args:
        codebook_size: number of codes K.
        symbols: (K,) permutation code -> ``group * M + member``.
        groups: number of groups G.
        offsets: causal neighbour offsets (dy, dx).
        grid: (rows, cols) of the position table.
        width: hidden width H.
        depth: number of hidden H -> H layers.
        codebook: (K, D) codebook for the embeddings, or None.
    """

    def __init__(
        self,
        codebook_size: int,
        symbols: Tensor,
        groups: int,
        offsets: tuple[tuple[int, int], ...],
        grid: tuple[int, int],
        width: int,
        depth: int,
        codebook: Tensor | None = None,
    ) -> None:
        super().__init__()
        k, s = codebook_size, len(offsets)
        self.codebook_size, self.groups = k, groups
        self.offsets, self.grid = tuple(offsets), tuple(grid)
        self.register_buffer("symbols", symbols.clone())
        self.free = nn.Parameter(torch.randn(s, k + 1, width) * 0.3)
        self.position = nn.Parameter(torch.zeros(grid[0] * grid[1], width) + 0.5)
        if codebook is not None:
            cb = codebook.detach().float().cpu()
            self.register_buffer("codebook", (cb - cb.mean(0)) / cb.std())
            self.proj = nn.Parameter(torch.randn(s, cb.shape[1], width) * 0.05)
        else:
            self.codebook, self.proj = None, None
        self.hidden = nn.ModuleList(nn.Linear(width, width) for _ in range(depth))
        self.group_head = nn.Linear(width, groups)
        self.member_head = nn.Linear(width, k)
        self.register_buffer("exponents", torch.zeros(0, dtype=torch.int64))

    # ---------------------------------------------------------------- phases
    @property
    def quantized(self) -> bool:
        """Whether the forward pass computes the exported integers."""
        return self.exponents.numel() > 0

    def quantize(self) -> None:
        """Starts quantisation-aware training: fixes each layer's exponent."""
        layers = [*self.hidden, self.group_head]
        exps = [max(0, _exponent(layer.weight)) for layer in layers]
        head = min(exps[-1], _exponent(self.member_head.weight))
        exps[-1] = max(head, STEPS_PER_NAT_BITS - STEP_BITS)
        self.exponents = torch.tensor(exps, dtype=torch.int64)

    def embedding_table(self) -> Tensor:
        """(S, K + 1, H) embeddings (row K: outside the map)."""
        if self.proj is None:
            return self.free
        through = torch.einsum("kd,sdh->skh", self.codebook, self.proj)
        return self.free + F.pad(through, (0, 0, 0, 1))

    # --------------------------------------------------------------- forward
    def features(self, context: Tensor, position: Tensor) -> Tensor:
        """Last hidden activations (N, H): real values in the float phase,
        the integers of the exported model once quantised."""
        table = self.embedding_table()
        s, rows, h = table.shape
        slots = torch.arange(s, device=context.device).unsqueeze(0) * rows
        if not self.quantized:
            z = F.embedding_bag(context + slots, table.reshape(-1, h), mode="sum")
            a = (z + self.position[position]).clamp(0, _TOP)
            for layer in self.hidden:
                a = layer(a).clamp(0, _TOP)
            return a
        scale = 2.0 ** (INPUT_SHIFT + STEP_BITS)
        table_q = _round(table * scale).reshape(-1, h)
        z = F.embedding_bag(context + slots, table_q, mode="sum")
        z = z + _round(self.position * scale)[position]
        a = _floor(z / 2**INPUT_SHIFT).clamp(0, ACTIVATION_MAX)
        for layer, e in zip(self.hidden, self.exponents.tolist(), strict=False):
            a = _floor(_affine(layer, a, e) * 2.0**-e).clamp(0, ACTIVATION_MAX)
        return a

    def _head(self, layer: nn.Linear) -> tuple[Tensor, Tensor, float]:
        """Weight, bias and nats per unit of a head's logits."""
        if not self.quantized:
            return layer.weight, layer.bias, 1.0
        e = int(self.exponents[-1])
        return *_quantized_params(layer, e), 2.0 ** -(e + STEP_BITS)

    def forward(self, context: Tensor, position: Tensor) -> tuple[Tensor, Tensor]:
        """Group logits (N, G) and member logits (N, K, symbol order), in nats."""
        a = self.features(context, position)
        gw, gb, nats = self._head(self.group_head)
        mw, mb, _ = self._head(self.member_head)
        return F.linear(a, gw, gb) * nats, F.linear(a, mw, mb) * nats

    def loss(self, context: Tensor, position: Tensor, symbol: Tensor) -> Tensor:
        """Cross-entropy in nats per code (group + member) of symbols (N,)."""
        a = self.features(context, position)
        m = self.codebook_size // self.groups
        group = symbol // m
        gw, gb, nats = self._head(self.group_head)
        mw, mb, _ = self._head(self.member_head)
        order = torch.argsort(group)  # the member logits of each group at once
        counts = torch.bincount(group, minlength=self.groups).tolist()
        parts = torch.split(a[order], counts)
        member = torch.cat(
            [F.linear(x, mw[g * m : g * m + m], mb[g * m : g * m + m])
             for g, x in enumerate(parts)]
        )  # fmt: skip
        return F.cross_entropy(F.linear(a, gw, gb) * nats, group) + F.cross_entropy(
            member * nats, (symbol % m)[order]
        )

    # ---------------------------------------------------------------- export
    @torch.no_grad()
    def export(self) -> ContextModel:
        """The integer :class:`ContextModel` this (quantised) net computes.

        Raises:
            RuntimeError: :meth:`quantize` was not called.
            ValueError: the integers leave the exact range (see ContextModel).
        """
        if not self.quantized:
            raise RuntimeError("call quantize() (and train) before export()")
        scale = 2.0 ** (INPUT_SHIFT + STEP_BITS)
        exps = self.exponents.tolist()
        hidden = tuple(
            _integer_affine(layer, e, e)
            for layer, e in zip(self.hidden, exps, strict=False)
        )
        d = torch.arange(_EXP_ENTRIES, dtype=torch.float64)
        table = (EXP_ONE * torch.exp(-d / STEPS_PER_NAT)).round().long()
        return ContextModel(
            codebook_size=self.codebook_size,
            groups=self.groups,
            offsets=self.offsets,
            grid=self.grid,
            symbols=self.symbols.clone(),
            embedding=(self.embedding_table() * scale).round().long().cpu(),
            position=(self.position * scale).round().long().cpu(),
            input_shift=INPUT_SHIFT,
            hidden=hidden,
            group_head=_integer_affine(self.group_head, exps[-1], 0),
            member_head=_integer_affine(self.member_head, exps[-1], 0),
            logit_shift=exps[-1] + STEP_BITS - STEPS_PER_NAT_BITS,
            exp_table=table,
        )


def _exponent(weight: Tensor) -> int:
    """Largest e with max|weight| * 2^e <= 127."""
    top = float(weight.detach().abs().max())
    return math.floor(math.log2(WEIGHT_MAX / top)) if top > 0 else 0


def _quantized_params(layer: nn.Linear, e: int) -> tuple[Tensor, Tensor]:
    w = _round(layer.weight * 2.0**e).clamp(-WEIGHT_MAX, WEIGHT_MAX)
    return w, _round(layer.bias * 2.0 ** (e + STEP_BITS))


def _affine(layer: nn.Linear, a: Tensor, e: int) -> Tensor:
    """``W_q a + b_q`` in integers (``a`` integer-valued)."""
    w, b = _quantized_params(layer, e)
    return F.linear(a, w, b)


def _integer_affine(layer: nn.Linear, e: int, shift: int) -> Affine:
    w, b = _quantized_params(layer, e)
    return Affine(w.long().cpu(), b.long().cpu(), shift)
