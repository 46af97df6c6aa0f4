"""How top-layer codes become images: the decoding options as one frozen value.

Decoding walks down the stack (paper Algorithm 3): each layer decodes its codes
into an estimate of the layer below, which is re-quantised into that layer's
codes. A :class:`Decoding` says how: its ``mode`` (one of :data:`DECODE_MODES`),
the ``temperature`` of the draws, the ``num_samples`` an average takes, and the
random source (a ``seed``, or a caller's ``generator`` whose stream successive
calls continue). Every decode path of the package takes one
(:meth:`~compressai_hqa.HQA.decode`, :meth:`~compressai_hqa.HQA.decompress`,
the codec, the evaluation, the figures) and every command offers exactly
:data:`DECODE_MODES`.

A mode is a :class:`DecodeMode`: how one layer picks the codes of the layer below
from their logits (:meth:`DecodeMode.codes`), and how a whole decode combines walks
down the stack (:meth:`DecodeMode.decode`); or, for a :attr:`DecodeMode.direct`
mode (``"mmse"``), no walk at all: the transmitted codes go straight to pixels
through the model's MMSE decoder of their layer
(:meth:`~compressai_hqa.models.HQAStack.set_mmse`). Adding a mode is a subclass
in this module and an entry of :data:`_MODES` (plus, where it needs one, the
layer code that implements it). A layer that cannot decode by a mode, or a
model without the MMSE decoder a direct mode needs, raises ``ValueError``.
"""

from __future__ import annotations

import dataclasses
import math

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import torch

from torch import Tensor

__all__ = [
    "DECODE_MODES",
    "SEEDED_SAMPLING",
    "DecodeMode",
    "Decoding",
    "check_temperature",
    "sample_categorical",
]


def check_temperature(temperature: float) -> float:
    """``temperature`` of a hard draw as a float.

    Raises:
        ValueError: unless it is a finite number > 0.
    """
    if not temperature > 0 or not math.isfinite(temperature):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature}")
    return float(temperature)


def sample_categorical(
    logits: Tensor, generator: torch.Generator | None = None, temperature: float = 1.0
) -> Tensor:
    """Draws one index per row of ``logits`` (..., K) by the Gumbel-max trick, from
    softmax(logits / temperature) (1: the distribution the logits give).

    The uniform noise is drawn on ``generator``'s device (CPU by default), so a
    seeded CPU generator gives the same codes on every device.

    Args:
        logits: unnormalised log probabilities (..., K).
        generator: the random source (default: the logits' device's).
        temperature: divides the logits (finite, > 0).

    Returns:
        int64 indices (...).
    """
    if temperature != 1.0:
        logits = logits / check_temperature(temperature)
    device = generator.device if generator is not None else logits.device
    u = torch.rand(
        logits.shape, generator=generator, device=device, dtype=torch.float32
    )
    gumbel = -torch.log(-torch.log(u.clamp(1e-20, 1.0 - 1e-7)))
    return (logits.float() + gumbel.to(logits.device)).argmax(-1)


class DecodeMode:
    """One way of decoding: how lower codes are picked and walks combined.

    Attributes:
        name: the mode's name in :data:`DECODE_MODES` and on command lines.
        stochastic: whether it draws random numbers.
        direct: whether it decodes the transmitted codes straight to pixels with
            the model's MMSE decoder of their layer instead of walking down the
            stack (:meth:`codes` and :meth:`decode` are then unused).
    """

    name: ClassVar[str]
    stochastic: ClassVar[bool] = False
    direct: ClassVar[bool] = False

    def codes(
        self, logits: Tensor, generator: torch.Generator | None, temperature: float
    ) -> Tensor:
        """The codes (...) of one layer from their logits (..., K).

        Raises:
            ValueError: the mode picks no codes itself.
        """
        raise ValueError(f"decoding mode {self.name!r} picks no codes")

    def decode(self, walk: Callable[[Decoding], Tensor], decoding: Decoding) -> Tensor:
        """A decode from ``walk`` (one walk down the stack with the codes picked
        as its argument says): by default one walk with ``decoding`` itself."""
        return walk(decoding)


class _Argmin(DecodeMode):
    """The most likely codes: deterministic (the default)."""

    name = "argmin"

    def codes(
        self, logits: Tensor, generator: torch.Generator | None, temperature: float
    ) -> Tensor:
        return logits.argmax(-1)


class _Sample(DecodeMode):
    """A draw from each posterior (paper Algorithm 3), at ``temperature``."""

    name = "sample"
    stochastic = True

    def codes(
        self, logits: Tensor, generator: torch.Generator | None, temperature: float
    ) -> Tensor:
        return sample_categorical(logits, generator, temperature)


class _Average(DecodeMode):
    """The mean of ``num_samples`` sampled decodes (paper Figure 6)."""

    name = "average"
    stochastic = True

    def decode(self, walk: Callable[[Decoding], Tensor], decoding: Decoding) -> Tensor:
        sampled = dataclasses.replace(decoding, mode="sample")
        total = walk(sampled)
        for _ in range(decoding.num_samples - 1):
            total = total + walk(sampled)
        return total / decoding.num_samples


class _MMSE(DecodeMode):
    """The distortion end: the image of least expected squared error given the
    transmitted codes, from the model's MMSE decoder of their layer
    (deterministic; no lower codes are picked)."""

    name = "mmse"
    direct = True


#: The decoding modes by name (the order of :data:`DECODE_MODES`).
_MODES: dict[str, DecodeMode] = {
    m.name: m for m in (_Argmin(), _Sample(), _Average(), _MMSE())
}

#: The decoding modes: ``"argmin"`` (the nearest codes, deterministic),
#: ``"sample"`` (a draw from each lower layer's posterior), ``"average"`` (the
#: mean of ``num_samples`` sampled decodes) and ``"mmse"`` (the model's MMSE
#: decoder of the transmitted layer: least squared error, deterministic).
DECODE_MODES: tuple[str, ...] = tuple(_MODES)


@dataclass(frozen=True)
class Decoding:
    """How to decode: validated once, passed whole to every decode path.

    Two equal values decode equally: with a ``seed``, every call draws from a
    fresh CPU generator seeded with it (the same draws on every device). A
    ``generator`` (not part of equality) is a stream that successive calls
    continue; :meth:`bound` turns a seed into one, for a decode split into batches.
    Without either, draws come from the default generator of the codes' device.

    Args:
        mode: one of :data:`DECODE_MODES`.
        temperature: draws are from softmax(logits / temperature): 1 is each
            posterior itself (the paper); above 1 flattens it (a deviation).
        num_samples: decodes averaged by ``"average"``.
        seed: seed of the CPU generator of the draws.
        generator: a random source whose stream successive calls continue
            (instead of ``seed``).

    Raises:
        ValueError: an unknown mode, a temperature that is not finite and > 0,
            ``num_samples < 1``, or both a seed and a generator.
    """

    mode: str = "argmin"
    temperature: float = 1.0
    num_samples: int = 8
    seed: int | None = None
    generator: torch.Generator | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.mode not in _MODES:
            raise ValueError(f"mode must be one of {DECODE_MODES}, got {self.mode!r}")
        object.__setattr__(self, "temperature", check_temperature(self.temperature))
        if isinstance(self.num_samples, bool) or not isinstance(self.num_samples, int):
            raise TypeError(f"num_samples must be an int, got {self.num_samples!r}")
        if self.num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {self.num_samples}")
        if self.seed is not None and self.generator is not None:
            raise ValueError("give a seed or a generator, not both")

    @classmethod
    def of(cls, decoding: Decoding | str | None = None) -> Decoding:
        """``decoding`` itself, a mode name's default :class:`Decoding`, or (None)
        the default one (argmin)."""
        if decoding is None:
            return cls()
        if isinstance(decoding, str):
            return cls(mode=decoding)
        if not isinstance(decoding, Decoding):
            raise TypeError(
                f"decoding must be a Decoding or a mode name, got {decoding!r}"
            )
        return decoding

    @property
    def method(self) -> DecodeMode:
        """The :class:`DecodeMode` of :attr:`mode`."""
        return _MODES[self.mode]

    @property
    def stochastic(self) -> bool:
        """Whether decoding draws random numbers."""
        return self.method.stochastic

    def replace(self, **changes: object) -> Decoding:
        """A copy with ``changes`` (validated)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def rng(self) -> torch.Generator | None:
        """The random source of one call: :attr:`generator`, else a fresh CPU
        generator seeded with :attr:`seed`, else None (the device's default)."""
        if self.generator is not None or self.seed is None:
            return self.generator
        return torch.Generator().manual_seed(self.seed)

    def bound(self) -> Decoding:
        """This decoding with its seed turned into a generator, so that successive
        calls (batches) continue one stream of draws."""
        if self.seed is None:
            return self
        return dataclasses.replace(self, seed=None, generator=self.rng())

    def codes(self, logits: Tensor) -> Tensor:
        """One layer's codes (...) from their logits (..., K), by :attr:`mode`.

        Raises:
            ValueError: the mode picks no codes itself (``"average"``,
                ``"mmse"``).
        """
        return self.method.codes(logits, self.rng(), self.temperature)

    def decode(self, walk: Callable[[Decoding], Tensor]) -> Tensor:
        """A decode by :attr:`mode` from ``walk`` (one walk down the stack whose
        lower codes :meth:`codes` of its argument picks); seeds are bound first."""
        bound = self.bound()
        return bound.method.decode(walk, bound)


#: Sampling from a CPU generator seeded with 0: the default of the statistics and
#: figures of stochastic decodes.
SEEDED_SAMPLING = Decoding("sample", seed=0)
