"""Frozen architectures of HQA stacks (and of the baselines of paper Table 3).

An :class:`HQAConfig` is what shapes the network: the image channels and one
:class:`LayerConfig` per layer (widths, codebook, quantiser kind, what the
decoder predicts). It travels with the weights (in the state dict's
``_extra_state``), so a model loads by its architecture name whatever recipe
trained it; how a stack is trained (optimiser, schedules, loss weights, code
resetting) is a :class:`~compressai_hqa.recipes.Recipe`, which travels with the
run. Configs are plain values (:meth:`HQAConfig.to_dict`) and load with
``torch.load(..., weights_only=True)``. The tables cited are those of the HQA
paper (see :class:`compressai_hqa.HQA`). The named configs are looked up by name
in the registry of model families, :mod:`compressai_hqa.families`.
"""

from __future__ import annotations

import dataclasses
import math

from dataclasses import dataclass, replace
from typing import Any

__all__ = [
    "CELEBA64",
    "HAMS_GS_MNIST",
    "HAMS_MNIST",
    "HAMS_MSE_MNIST",
    "MNIST",
    "MNIST_WIDE",
    "QUANTIZERS",
    "TARGETS",
    "VQVAE_MNIST",
    "HQAConfig",
    "LayerConfig",
    "check_compatible",
]

#: How a layer quantises: ``"probabilistic"`` (HQA: posterior softmax(-d),
#: Gumbel-softmax in training, codebook learnt by gradient) or ``"ema"``
#: (VQ-VAE: nearest code, straight-through gradient, codebook updated by an
#: exponential moving average, i.e. online k-means).
QUANTIZERS = ("probabilistic", "ema")
#: What the decoder of a layer >= 2 predicts: ``"mse"`` (the continuous z_e of
#: the layer below, squared error; HQA) or ``"ce"`` (logits over the code
#: indices of the layer below, cross-entropy; HAMs). Layer 1 predicts pixels.
TARGETS = ("mse", "ce")

# Fields that :meth:`LayerConfig.architecture` lists only when they differ from
# these values: the architecture of a layer that does not use them (and with it
# the weights fingerprint in .hqa files) does not mention them.
_ADDED_FIELDS = {"downsample_steps": 1, "quantizer": "probabilistic", "target": "mse"}


@dataclass(frozen=True)
class LayerConfig:
    """The architecture of one HQA layer: one column of the paper's tables.

    Args:
        enc_hidden: encoder hidden units (width of the last hidden conv).
        dec_hidden: decoder hidden units (width of the first hidden conv).
        enc_layers: number of encoder convolutions (>= 2).
        dec_layers: number of decoder convolutions (>= 3).
        codebook_size: number of codes K (a power of two: rate is log2 K bits).
        codebook_dim: code dimension D.
        downsample: whether the layer reduces H and W (the first CelebA layer
            keeps the resolution, paper Table 9).
        downsample_steps: how many times the layer halves H and W when
            ``downsample`` is set (1 for HQA and HAMs; the flat VQ-VAE baselines
            of paper Table 14 halve 1 to 5 times in one layer).
        dec_dilations: dilations of the ``dec_layers - 3`` intermediate decoder
            convolutions; empty means no dilation.
        dropout: dropout probability after each hidden activation (training only).
        quantizer: one of :data:`QUANTIZERS`.
        target: one of :data:`TARGETS` (layers >= 2).
    """

    enc_hidden: int
    dec_hidden: int
    enc_layers: int = 3
    dec_layers: int = 3
    codebook_size: int = 256
    codebook_dim: int = 64
    downsample: bool = True
    downsample_steps: int = 1
    dec_dilations: tuple[int, ...] = ()
    dropout: float = 0.0
    quantizer: str = "probabilistic"
    target: str = "mse"

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
        steps = self.downsample_steps
        if steps < 1 or steps > self.enc_layers - 1 or steps - 1 > self.dec_layers - 3:
            raise ValueError(
                f"downsample_steps={steps} needs 1 <= steps, enc_layers >= steps + 1 "
                f"and dec_layers >= steps + 2 (got {self.enc_layers}, "
                f"{self.dec_layers})"
            )
        if self.quantizer not in QUANTIZERS:
            raise ValueError(
                f"quantizer must be one of {QUANTIZERS}, got {self.quantizer!r}"
            )
        if self.target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, got {self.target!r}")

    @property
    def scale(self) -> int:
        """Factor by which the layer reduces H and W."""
        return 2**self.downsample_steps if self.downsample else 1

    def architecture(self) -> dict[str, Any]:
        """The fields as plain values; ``downsample_steps``, ``quantizer`` and
        ``target`` only when they are not 1, ``"probabilistic"`` and ``"mse"``."""
        return {
            k: v
            for k, v in dataclasses.asdict(self).items()
            if _ADDED_FIELDS.get(k, object()) != v
        }

    @property
    def bits_per_code(self) -> int:
        """Rate of one transmitted code under the uniform prior: log2 K."""
        return int(math.log2(self.codebook_size))


@dataclass(frozen=True)
class HQAConfig:
    """The architecture of a whole stack (its recipe is a separate
    :class:`~compressai_hqa.recipes.Recipe`).

    Args:
        name: short name (``"mnist"``, ``"celeba64"``, ``"hams-mnist"``, ...).
        in_channels: image channels (1 or 3).
        image_size: training resolution (square).
        layers: one :class:`LayerConfig` per layer, bottom (pixels) first.
    """

    name: str
    in_channels: int
    image_size: int
    layers: tuple[LayerConfig, ...]

    def __post_init__(self) -> None:
        if not self.layers:
            raise ValueError("an HQA config needs at least one layer")
        if self.in_channels < 1:
            raise ValueError(f"in_channels must be >= 1, got {self.in_channels}")
        # Normalise lists (e.g. from JSON) to tuples so configs stay hashable.
        object.__setattr__(self, "layers", tuple(self.layers))
        if self.layers[0].target != "mse":
            raise ValueError("layer 1 reconstructs pixels: its target must be 'mse'")

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def downsampling(self, num_layers: int | None = None) -> int:
        """Spatial factor between the image and the codes of layer ``num_layers``."""
        n = self.num_layers if num_layers is None else num_layers
        return math.prod(layer.scale for layer in self.layers[:n])

    def replace_layers(self, **changes: Any) -> HQAConfig:
        """Returns a copy with ``changes`` applied to every layer."""
        return replace(self, layers=tuple(replace(c, **changes) for c in self.layers))

    def to_dict(self) -> dict[str, Any]:
        """Plain-value form (lists, numbers, strings) for weights and checkpoints."""

        def plain(value: Any) -> Any:
            if isinstance(value, (tuple, list)):
                return [plain(v) for v in value]
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            return value

        return plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HQAConfig:
        """Inverse of :meth:`to_dict`.

        Raises:
            TypeError: unknown or missing keys.
            ValueError: invalid values.
        """
        data = dict(data)
        layers = tuple(
            LayerConfig(
                **{**layer, "dec_dilations": tuple(layer.get("dec_dilations", ()))}
            )
            for layer in data.pop("layers")
        )
        return cls(layers=layers, **data)


def _mnist(
    name: str = "mnist",
    enc: tuple[int, ...] = (16, 16, 32, 48, 80),
    dec: tuple[int, ...] = (16, 32, 48, 80, 128),
    quantizer: str = "probabilistic",
    target: str = "mse",
) -> HQAConfig:
    """Paper Table 10: 5 layers, K=256, D=64, 32x32 MNIST (28x28 resized).

    ``quantizer`` and ``target`` (layers >= 2) give the HAMs variants of paper
    Table 3 on the same structure.
    """
    return HQAConfig(
        name=name,
        in_channels=1,
        image_size=32,
        layers=tuple(
            LayerConfig(
                enc_hidden=e,
                dec_hidden=d,
                quantizer=quantizer,
                target=target if i > 0 else "mse",
            )
            for i, (e, d) in enumerate(zip(enc, dec, strict=True))
        ),
    )


def _vqvae_mnist(steps: int) -> HQAConfig:
    """Paper Table 14: one VQ-VAE layer halving 32x32 ``steps`` times (1..5).

    Its code grid is that of HQA layer ``steps``: ``steps`` = 5 gives one 8-bit
    code per image. Encoder ``steps + 1`` convolutions, decoder ``steps + 2``.
    """
    enc = (22, 40, 50, 62, 78)[steps - 1]
    dec = (16, 18, 20, 22, 22)[steps - 1]
    grid = 32 >> steps
    return HQAConfig(
        name=f"vqvae-mnist-{grid}x{grid}",
        in_channels=1,
        image_size=32,
        layers=(
            LayerConfig(
                enc_hidden=enc,
                dec_hidden=dec,
                enc_layers=steps + 1,
                dec_layers=steps + 2,
                downsample_steps=steps,
                quantizer="ema",
            ),
        ),
    )


def _celeba64() -> HQAConfig:
    """Paper Table 9: 7 layers, K=512, D=64, 64x64 CelebA.

    Table 9 lists input sizes 64, 64, 32, 16, 8, 4, 2: the first layer keeps the
    resolution, so the seventh layer's codes are 1x1 (9 bits per image).
    """
    hidden = (64, 64, 512, 512, 512, 512, 512)
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
            )
            for i, (h, p) in enumerate(zip(hidden, dropout, strict=True))
        ),
    )


MNIST: HQAConfig = _mnist()
#: Table 10's recipe with the original code's widths: wider upper layers, 8.1 M
#: parameters instead of 0.57 M; layer 1 is identical.
MNIST_WIDE: HQAConfig = _mnist(
    "mnist-wide", enc=(16, 16, 32, 64, 128), dec=(16, 64, 256, 512, 1024)
)
CELEBA64: HQAConfig = _celeba64()
#: HAMs on MNIST (paper Table 12 widths): EMA codebooks, cross-entropy over the
#: lower layer's codes above layer 1.
HAMS_MNIST: HQAConfig = _mnist(
    "hams-mnist", dec=(16, 26, 40, 58, 96), quantizer="ema", target="ce"
)
#: HAMs + GS (paper Table 3): HAMs with HQA's probabilistic quantiser.
HAMS_GS_MNIST: HQAConfig = _mnist(
    "hams-gs-mnist", dec=(16, 26, 40, 58, 96), target="ce"
)
#: HAMs + MSE (paper Table 3): EMA codebooks, squared error on the lower z_e, with
#: the Table 10 widths of the other MSE systems (the 256-way output of a
#: cross-entropy decoder is why HAMs' decoders are narrower).
HAMS_MSE_MNIST: HQAConfig = _mnist("hams-mse-mnist", quantizer="ema")
#: The flat VQ-VAEs of paper Table 14, by code grid: ``VQVAE_MNIST[1]`` is the
#: 8-bit 1x1 one, ``VQVAE_MNIST[16]`` the 16x16 (2,048-bit) one.
VQVAE_MNIST: dict[int, HQAConfig] = {32 >> s: _vqvae_mnist(s) for s in range(1, 6)}


def check_compatible(
    config: HQAConfig, expected: HQAConfig, num_layers: int | None = None
) -> None:
    """Raises ValueError unless ``config``'s layers are ``expected``'s architecture.

    The image channels and the architecture of each of the first ``num_layers`` layers
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
