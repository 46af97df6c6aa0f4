"""Frozen configurations of HQA stacks: one dataclass instance per paper table.

A :class:`HQAConfig` holds everything needed to build *and* train a stack: the
per-layer architecture and optimisation hyper-parameters (one :class:`LayerConfig`
per column of the paper's Tables 9 and 10) and the schedule shared by all layers
(learning rate, Gumbel temperature, code resetting). Configs are plain values, so
they travel inside checkpoints (:meth:`HQAConfig.to_dict`) and load with
``torch.load(..., weights_only=True)``. The tables and appendices cited are those
of the HQA paper (see :class:`compressai_hqa.HQA`).
"""

from __future__ import annotations

import dataclasses
import math

from dataclasses import dataclass, replace
from typing import Any

__all__ = [
    "CELEBA64",
    "CONFIGS",
    "LOSS_SCALINGS",
    "MNIST",
    "MNIST_WIDE",
    "HQAConfig",
    "LayerConfig",
    "check_compatible",
    "get_config",
]


#: How a layer weighs its entropy and commitment terms against the MSE (mean over
#: the target's elements): ``"original"`` multiplies them by (latent positions) /
#: (target elements) as the original code does (1/4 at MNIST layer 1, 1/256
#: above); ``"position"`` applies beta to their mean per latent position, as the
#: paper's equations are written.
LOSS_SCALINGS = ("original", "position")

#: Code-reset rules (see :class:`compressai_hqa.layers.ProbabilisticQuantizer`).
RESET_RULES = ("paper", "data")


@dataclass(frozen=True)
class LayerConfig:
    """One HQA layer: one column of the paper's hyper-parameter tables.

    Args:
        enc_hidden: encoder hidden units (width of the last hidden conv).
        dec_hidden: decoder hidden units (width of the first hidden conv).
        enc_layers: number of encoder convolutions (>= 2).
        dec_layers: number of decoder convolutions (>= 3).
        codebook_size: number of codes K (a power of two: rate is log2 K bits).
        codebook_dim: code dimension D.
        downsample: whether the layer halves H and W (the first CelebA layer
            keeps the resolution, paper Table 9).
        dec_dilations: dilations of the ``dec_layers - 3`` intermediate decoder
            convolutions; empty means no dilation.
        dropout: dropout probability after each hidden activation (training only).
        beta_entropy: weight beta_e of the KL-to-uniform (negative entropy) term.
        beta_commit: weight beta_c of the probabilistic commitment term.
        steps: training steps of this layer.
        batch_size: training batch size of this layer.
    """

    enc_hidden: int
    dec_hidden: int
    enc_layers: int = 3
    dec_layers: int = 3
    codebook_size: int = 256
    codebook_dim: int = 64
    downsample: bool = True
    dec_dilations: tuple[int, ...] = ()
    dropout: float = 0.0
    beta_entropy: float = 1e-3
    beta_commit: float = 1e-3
    steps: int = 18_000
    batch_size: int = 512

    def __post_init__(self) -> None:
        if self.enc_layers < 2:
            raise ValueError(f"enc_layers must be >= 2, got {self.enc_layers}")
        if self.dec_layers < 3:
            raise ValueError(f"dec_layers must be >= 3, got {self.dec_layers}")
        if self.enc_hidden < 2 or self.dec_hidden < 2:
            raise ValueError("enc_hidden and dec_hidden must be >= 2")
        k = self.codebook_size
        if k < 2 or k & (k - 1):
            raise ValueError(f"codebook_size must be a power of two >= 2, got {k}")
        if k > 2**15:
            raise ValueError("codebook_size must be <= 32768 (16-bit rANS CDFs)")
        if self.dec_dilations and len(self.dec_dilations) != self.dec_layers - 3:
            raise ValueError(
                f"dec_dilations needs {self.dec_layers - 3} entries "
                f"(dec_layers - 3), got {len(self.dec_dilations)}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    def architecture(self) -> dict[str, Any]:
        """The fields that shape the trained network (not how it is trained)."""
        training = ("beta_entropy", "beta_commit", "steps", "batch_size")
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in training}

    @property
    def bits_per_code(self) -> int:
        """Rate of one transmitted code under the uniform prior: log2 K."""
        return int(math.log2(self.codebook_size))


@dataclass(frozen=True)
class HQAConfig:
    """A whole HQA stack and its greedy training recipe (paper Algorithm 2).

    Args:
        name: short name (``"mnist"``, ``"celeba64"``, ...).
        in_channels: image channels (1 or 3).
        image_size: training resolution (square).
        layers: one :class:`LayerConfig` per layer, bottom (pixels) first.
        lr: RAdam learning rate.
        lr_final_ratio: final learning rate as a fraction of ``lr``.
        lr_flat_fraction: fraction of the steps at constant ``lr`` before the
            cosine annealing (the paper anneals "in the final third").
        grad_clip: gradient-norm clipping threshold.
        temp_start: initial Gumbel-softmax temperature.
        temp_end: final Gumbel-softmax temperature (linear decay).
        reset_window: batches over which code usage is counted.
        reset_threshold: a code is dead when its usage is below this fraction of
            the most-used code's usage over the window.
        reset_fraction: code resetting is active during this fraction of steps.
        reset_noise: standard deviation of the noise added to a reset code
            (``reset_rule="paper"``).
        reset_rule: ``"paper"`` (the least-used code moves next to the most-used
            one, one per window; paper C.4) or ``"data"`` (every dead code is
            re-seeded at a batch encoder output; a documented deviation).
        loss_scaling: one of :data:`LOSS_SCALINGS`.
    """

    name: str
    in_channels: int
    image_size: int
    layers: tuple[LayerConfig, ...]
    lr: float = 4e-4
    lr_final_ratio: float = 0.1
    lr_flat_fraction: float = 2.0 / 3.0
    grad_clip: float = 1.0
    temp_start: float = 0.66
    temp_end: float = 0.01
    reset_window: int = 20
    reset_threshold: float = 0.03
    reset_fraction: float = 0.75
    reset_noise: float = 0.01
    reset_rule: str = "paper"
    loss_scaling: str = "original"

    def __post_init__(self) -> None:
        if self.reset_rule not in RESET_RULES:
            raise ValueError(
                f"reset_rule must be one of {RESET_RULES}, got {self.reset_rule!r}"
            )
        if self.loss_scaling not in LOSS_SCALINGS:
            raise ValueError(
                f"loss_scaling must be one of {LOSS_SCALINGS}, "
                f"got {self.loss_scaling!r}"
            )
        if not self.layers:
            raise ValueError("an HQA config needs at least one layer")
        if self.in_channels < 1:
            raise ValueError(f"in_channels must be >= 1, got {self.in_channels}")
        # Normalise lists (e.g. from JSON) to tuples so configs stay hashable.
        object.__setattr__(self, "layers", tuple(self.layers))

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def downsampling(self, num_layers: int | None = None) -> int:
        """Spatial factor between the image and the codes of layer ``num_layers``."""
        n = self.num_layers if num_layers is None else num_layers
        return 2 ** sum(1 for layer in self.layers[:n] if layer.downsample)

    def replace_layers(self, **changes: Any) -> HQAConfig:
        """Returns a copy with ``changes`` applied to every layer."""
        return replace(self, layers=tuple(replace(c, **changes) for c in self.layers))

    def to_dict(self) -> dict[str, Any]:
        """Plain-value form (lists, numbers, strings) for checkpoints."""

        def plain(value: Any) -> Any:
            if isinstance(value, (tuple, list)):
                return [plain(v) for v in value]
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            return value

        return plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HQAConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        data = dict(data)
        layers = tuple(
            LayerConfig(
                **{
                    **layer,
                    "dec_dilations": tuple(layer.get("dec_dilations", ())),
                }
            )
            for layer in data.pop("layers")
        )
        return cls(layers=layers, **data)


def _mnist(
    name: str = "mnist",
    enc: tuple[int, ...] = (16, 16, 32, 48, 80),
    dec: tuple[int, ...] = (16, 32, 48, 80, 128),
) -> HQAConfig:
    """Paper Table 10: 5 layers, K=256, D=64, 32x32 MNIST (28x28 resized)."""
    return HQAConfig(
        name=name,
        in_channels=1,
        image_size=32,
        layers=tuple(
            LayerConfig(enc_hidden=e, dec_hidden=d, steps=18_000, batch_size=512)
            for e, d in zip(enc, dec, strict=True)
        ),
        temp_start=0.66,
        temp_end=0.01,
    )


def _celeba64() -> HQAConfig:
    """Paper Table 9: 7 layers, K=512, D=64, 64x64 CelebA.

    Table 9 lists input sizes 64, 64, 32, 16, 8, 4, 2: the first layer keeps the
    resolution, so the seventh layer's codes are 1x1 (9 bits per image).
    """
    hidden = (64, 64, 512, 512, 512, 512, 512)
    steps = (100_000, 100_000, 100_000, 100_000, 60_000, 30_000, 30_000)
    dropout = (0.0, 0.0, 0.0, 0.5, 0.5, 0.5, 0.5)
    return HQAConfig(
        name="celeba64",
        in_channels=3,
        image_size=64,
        layers=tuple(
            LayerConfig(
                enc_hidden=h,
                dec_hidden=h,
                enc_layers=3,
                dec_layers=6,
                codebook_size=512,
                codebook_dim=64,
                downsample=i > 0,
                dec_dilations=(1, 2, 4),
                dropout=p,
                beta_entropy=5e-5,
                beta_commit=5e-5,
                steps=s,
                batch_size=1024,
            )
            for i, (h, s, p) in enumerate(zip(hidden, steps, dropout, strict=True))
        ),
        temp_start=0.4,
        temp_end=0.01,
    )


MNIST: HQAConfig = _mnist()
#: Table 10's recipe with the original code's widths (REFERENCE.md 3.8): wider
#: upper layers, 8.1 M parameters instead of 0.57 M; layer 1 is identical.
MNIST_WIDE: HQAConfig = _mnist(
    "mnist-wide", enc=(16, 16, 32, 64, 128), dec=(16, 64, 256, 512, 1024)
)
CELEBA64: HQAConfig = _celeba64()

CONFIGS: dict[str, HQAConfig] = {
    "mnist": MNIST,
    "mnist-wide": MNIST_WIDE,
    "celeba64": CELEBA64,
}


def get_config(name: str | HQAConfig) -> HQAConfig:
    """Looks a config up by name (``"mnist"``, ``"celeba64"``)."""
    if isinstance(name, HQAConfig):
        return name
    try:
        return CONFIGS[name]
    except KeyError:
        raise ValueError(
            f"unknown HQA config {name!r}; available: {', '.join(sorted(CONFIGS))}"
        ) from None


def check_compatible(
    config: HQAConfig, expected: HQAConfig, num_layers: int | None = None
) -> None:
    """Raises ValueError unless ``config``'s layers are ``expected``'s architecture.

    Training settings (steps, batch size, loss weights) may differ; the image
    channels and the architecture of each of the first ``num_layers`` layers
    (default: all of ``config``'s) must be equal, and ``expected`` must have at
    least that many layers.
    """
    n = config.num_layers if num_layers is None else int(num_layers)
    same = (
        config.in_channels == expected.in_channels
        and n <= expected.num_layers
        and [c.architecture() for c in config.layers[:n]]
        == [c.architecture() for c in expected.layers[:n]]
    )
    if not same:
        raise ValueError(
            f"the weights are an HQA of config {config.name!r} "
            f"({config.in_channels} channels, {config.num_layers} layers), which "
            f"does not match the requested {expected.name!r} "
            f"({expected.in_channels} channels, {expected.num_layers} layers)"
        )
