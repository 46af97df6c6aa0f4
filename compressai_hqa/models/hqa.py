"""The HQA stack as a CompressAI model.

Reference: W. Williams, S. Ringer, T. Ash, J. Hughes, D. MacLeod, J. Dougherty,
"Hierarchical Quantized Autoencoders", NeurIPS 2020.
"""

from __future__ import annotations

import math
import operator

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from compressai.models import CompressionModel
from torch import Tensor

from compressai_hqa.configs import HQAConfig, get_config
from compressai_hqa.entropy_models import CategoricalCoder, UniformCategoricalCoder
from compressai_hqa.errors import CorruptStreamError
from compressai_hqa.models.layer import HQALayer

__all__ = ["HQA", "MAX_PIXELS", "PRIORS"]

_FORMAT = "compressai_hqa.HQA/1"
_DECODE_MODES = ("argmin", "sample")
#: Entropy models of the transmitted codes: the paper's uniform prior, or the
#: static categorical prior learnt from code frequencies (:meth:`HQA.coder`).
PRIORS = ("uniform", "learned")
#: Largest image (H x W) that :meth:`HQA.decompress` accepts.
MAX_PIXELS = 1 << 28


class HQA(CompressionModel):
    r"""Hierarchical Quantized Autoencoder (Williams et al., NeurIPS 2020).

    A stack of :class:`HQALayer`\s trained greedily: layer 1 reconstructs
    pixels, layer l >= 2 the normalised continuous codes of layer l-1. Only the
    top layer's code indices are transmitted, each costing log2 K bits under a
    uniform prior; decoding walks down the stack, re-quantising at every layer
    (paper Algorithm 3). :meth:`truncate` gives the model of any lower rate.

    In training mode only the top layer trains: lower layers stay in eval mode
    (frozen normalisation statistics, no dropout, no code resetting), whatever
    ``model.train()`` is called on.

    The model follows CompressAI's contract: ``forward`` returns ``x_hat`` and
    the uniform ``likelihoods`` of the codes, ``compress`` returns one rANS
    bitstream per image and ``decompress`` inverts it. Inputs of any size are
    padded (replicate) to a multiple of the downsampling factor and cropped back.
    ``compress`` rejects what it cannot code (NaN, empty batches, wrong
    channels, integer images); ``decompress`` validates every stream against
    ``shape`` before the native decoder runs and raises
    :class:`~compressai_hqa.CorruptStreamError` on bad data.

    Besides the uniform prior, a model may carry a learnt categorical prior per
    layer (:attr:`code_priors`, saved in the state dict's ``_extra_state``; see
    :meth:`coder`).

    Args:
        config: an :class:`HQAConfig` or a config name (``"mnist"``,
            ``"celeba64"``).
        num_layers: build only the first ``num_layers`` layers (default: all).
    """

    def __init__(
        self, config: HQAConfig | str = "mnist", num_layers: int | None = None
    ) -> None:
        super().__init__()
        config = get_config(config)
        n = config.num_layers if num_layers is None else int(num_layers)
        if not 1 <= n <= config.num_layers:
            raise ValueError(
                f"num_layers must be in [1, {config.num_layers}] for config "
                f"{config.name!r}, got {num_layers}"
            )
        layers = []
        in_channels = config.in_channels
        for i, layer_config in enumerate(config.layers[:n]):
            layers.append(
                HQALayer(
                    in_channels,
                    layer_config,
                    bottom=i == 0,
                    temperature=config.temp_start,
                    reset_window=config.reset_window,
                    reset_threshold=config.reset_threshold,
                    reset_noise=config.reset_noise,
                    reset_rule=config.reset_rule,
                    loss_scaling=config.loss_scaling,
                )
            )
            in_channels = layer_config.codebook_dim
        self._setup(config, nn.ModuleList(layers))

    def _setup(self, config: HQAConfig, layers: nn.ModuleList) -> None:
        self.config = config
        self.layers = layers
        top_codes = config.layers[len(layers) - 1].codebook_size
        self.entropy_coder = UniformCategoricalCoder(top_codes)
        self._code_priors: dict[int, tuple[int, ...]] = {}

    # ------------------------------------------------------------- properties
    @property
    def num_layers(self) -> int:
        """Number of layers; the codes of the top one are transmitted."""
        return len(self.layers)

    @property
    def top(self) -> HQALayer:
        return self.layers[-1]  # type: ignore[return-value]

    @property
    def downsampling(self) -> int:
        """Spatial factor between the image and the transmitted codes."""
        return self.config.downsampling(self.num_layers)

    @property
    def device(self) -> torch.device:
        return self.top.quantizer.codebook.device

    def latent_shape(self, height: int, width: int) -> tuple[int, int]:
        """Shape of the transmitted code grid for an image of this size."""
        f = self.downsampling
        return math.ceil(height / f), math.ceil(width / f)

    def bits(self, height: int, width: int) -> int:
        """Ideal rate in bits of one image of this size: codes x log2 K."""
        h, w = self.latent_shape(height, width)
        return h * w * self.config.layers[self.num_layers - 1].bits_per_code

    # ---------------------------------------------------------- code priors
    @property
    def code_priors(self) -> dict[int, tuple[int, ...]]:
        """Learnt priors: layer (1-based) -> 16-bit code frequencies (a copy)."""
        return dict(self._code_priors)

    def set_code_prior(self, layer: int, frequencies: Sequence[int] | None) -> None:
        """Sets (or with None removes) the learnt prior of the codes of ``layer``.

        Args:
            layer: 1-based layer of this model.
            frequencies: K 16-bit frequencies, each >= 1, summing to 65536
                (:func:`compressai_hqa.entropy_models.quantize_frequencies`).
        """
        if not 1 <= layer <= self.num_layers:
            raise ValueError(f"layer must be in [1, {self.num_layers}], got {layer}")
        if frequencies is None:
            self._code_priors.pop(layer, None)
            return
        coder = CategoricalCoder(frequencies)
        codes = self.config.layers[layer - 1].codebook_size
        if coder.num_symbols != codes:
            raise ValueError(
                f"layer {layer} has {codes} codes, the prior {coder.num_symbols}"
            )
        self._code_priors[layer] = coder.frequencies

    def coder(self, prior: str = "uniform") -> CategoricalCoder:
        """The entropy model of the transmitted (top-layer) codes.

        Args:
            prior: ``"uniform"`` (the paper's, :attr:`entropy_coder`) or
                ``"learned"`` (the static prior in :attr:`code_priors`).

        Raises:
            ValueError: unknown prior, or no learnt prior for the top layer.
        """
        if prior == "uniform":
            return self.entropy_coder
        if prior != "learned":
            raise ValueError(f"prior must be one of {PRIORS}, got {prior!r}")
        freqs = self._code_priors.get(self.num_layers)
        if freqs is None:
            raise ValueError(
                f"these weights carry no learned prior for layer {self.num_layers}; "
                "estimate one with examples/estimate_prior.py"
            )
        return CategoricalCoder(freqs)

    # --------------------------------------------------------------- training
    def train(self, mode: bool = True) -> HQA:
        """Sets training mode on the top layer only; lower layers stay frozen."""
        super().train(mode)
        for layer in self.layers[:-1]:
            layer.eval()
        return self

    def layer_input(self, x: Tensor, layer: int | None = None) -> Tensor:
        """What layer ``layer`` (1-based, default: top) reconstructs, unnormalised.

        The image for layer 1, else the continuous ``z_e`` of layer ``layer - 1``
        computed by the frozen layers below (no gradient, no statistics update).
        """
        layer = self.num_layers if layer is None else layer
        if not 1 <= layer <= self.num_layers:
            raise ValueError(f"layer must be in [1, {self.num_layers}], got {layer}")
        self._check_image(x)
        f = self.config.downsampling(layer)
        if x.shape[-2] % f or x.shape[-1] % f:
            raise ValueError(
                f"training images must be multiples of {f} pixels, "
                f"got {tuple(x.shape[-2:])}"
            )
        with torch.no_grad():
            for below in self.layers[: layer - 1]:
                x = below.encode(x)
        return x

    # -------------------------------------------------------------- inference
    def encode(self, x: Tensor) -> Tensor:
        """Continuous top-layer codes z_e (no quantisation on the way up)."""
        h = self._pad(x)
        for layer in self.layers:
            h = layer.encode(h)
        return h

    def quantize(
        self, x: Tensor, mode: str = "argmin", generator: torch.Generator | None = None
    ) -> Tensor:
        """Top-layer code indices (B, h, w) of images ``x`` (B, C, H, W)."""
        return self.top.quantizer.quantize(self.encode(x), mode, generator)

    def decode(
        self,
        indices: Tensor,
        mode: str = "argmin",
        generator: torch.Generator | None = None,
        size: Sequence[int] | None = None,
    ) -> Tensor:
        """Images from top-layer code indices (paper Algorithm 3).

        Args:
            indices: code indices (B, h, w) of the top layer.
            mode: how lower layers re-quantise: ``"argmin"`` (deterministic,
                the default) or ``"sample"`` (a draw from each posterior).
            generator: random source for ``"sample"``.
            size: crop the output to this (H, W).
        """
        if mode not in _DECODE_MODES:
            raise ValueError(f"mode must be one of {_DECODE_MODES}, got {mode!r}")
        if indices.dim() != 3:
            raise ValueError(f"indices must be (B, h, w), got {tuple(indices.shape)}")
        h = self.top.decode(self.top.quantizer.embed(indices.to(self.device)))
        for layer in reversed(self.layers[:-1]):
            codes = layer.quantizer.quantize(h, mode, generator)
            h = layer.decode(layer.quantizer.embed(codes))
        if size is not None:
            h = h[..., : size[0], : size[1]]
        return h

    def reconstruct(
        self,
        x: Tensor,
        mode: str = "argmin",
        generator: torch.Generator | None = None,
        sample_top: bool = False,
    ) -> Tensor:
        """Reconstructions of images ``x`` without a bitstream (paper Algorithm 3).

        Args:
            x: images (B, C, H, W) in [0, 1].
            mode: how the lower layers re-quantise (see :meth:`decode`).
            generator: random source of the draws.
            sample_top: also draw the top code from q(k | z_e) instead of taking
                the argmin, as the paper's Algorithm 3 does. :meth:`compress`
                always transmits the argmin code.
        """
        indices = self.quantize(x, "sample" if sample_top else "argmin", generator)
        return self.decode(indices, mode, generator, size=x.shape[-2:])

    def decode_average(
        self,
        indices: Tensor,
        n: int,
        generator: torch.Generator | None = None,
        size: Sequence[int] | None = None,
    ) -> Tensor:
        """Mean of ``n`` stochastic decodes of the same codes (paper Figure 6)."""
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        total = self.decode(indices, "sample", generator, size)
        for _ in range(n - 1):
            total = total + self.decode(indices, "sample", generator, size)
        return total / n

    def forward(self, x: Tensor) -> dict[str, Any]:
        """CompressAI forward: argmin codes, deterministic decode, 1/K likelihoods.

        The bpp CompressAI estimates from the likelihoods is exactly the rate
        of :meth:`compress` without the bitstream's framing.
        """
        indices = self.quantize(x)
        x_hat = self.decode(indices, size=x.shape[-2:])
        likelihoods = self.entropy_coder.likelihoods(indices).unsqueeze(1)
        return {"x_hat": x_hat, "likelihoods": {"codes": likelihoods}}

    def compress(self, x: Tensor) -> dict[str, Any]:
        """Real bitstreams: ``{"strings": [[bytes per image]], "shape": (H, W)}``.

        Raises:
            ValueError: ``x`` is not a non-empty (B, C, H, W) batch with the
                model's channels, or holds NaN or infinite values.
            TypeError: ``x`` is not floating point.
        """
        self._check_image(x)
        if not bool(torch.isfinite(x).all()):
            raise ValueError("images must be finite: found NaN or infinite values")
        indices = self.quantize(x)
        return {
            "strings": [self.entropy_coder.compress(indices)],
            "shape": torch.Size(x.shape[-2:]),
        }

    def decompress(
        self,
        strings: Sequence[Sequence[bytes]],
        shape: Sequence[int],
        mode: str = "argmin",
        generator: torch.Generator | None = None,
    ) -> dict[str, Tensor]:
        """Images in [0, 1] from :meth:`compress`'s output.

        Args:
            strings: ``[[bytes per image]]``.
            shape: the original (H, W).
            mode, generator: as for :meth:`decode`.

        Raises:
            CorruptStreamError: ``strings`` or ``shape`` are malformed, or a
                stream is not a valid stream of the codes of an image of
                ``shape`` (checked before the native decoder runs).
        """
        if mode not in _DECODE_MODES:
            raise ValueError(f"mode must be one of {_DECODE_MODES}, got {mode!r}")
        if (
            not isinstance(strings, (list, tuple))
            or len(strings) != 1
            or not isinstance(strings[0], (list, tuple))
            or not strings[0]
        ):
            raise CorruptStreamError(
                "HQA expects strings=[[bytes per image]] (one latent, at least "
                "one image)"
            )
        height, width = _checked_shape(shape)
        indices = self.entropy_coder.decompress(
            strings[0], self.latent_shape(height, width)
        )
        return {"x_hat": self.decode(indices, mode, generator, size=(height, width))}

    # ---------------------------------------------------- CompressAI plumbing
    def aux_loss(self) -> Tensor:
        """HQA has no EntropyBottleneck: a zero tensor on the model's device."""
        return torch.zeros((), device=self.device)

    def update(
        self,
        scale_table: Any = None,
        force: bool = False,
        update_quantiles: bool = False,
    ) -> bool:
        """Nothing to update: the uniform prior needs no learnt CDF."""
        return False

    def truncate(self, num_layers: int) -> HQA:
        """The stack cut at layer ``num_layers`` (sharing this model's modules).

        The codes of layer ``num_layers`` become the transmitted ones, so one
        trained stack gives every rate. Use ``copy.deepcopy`` for independent
        weights. Builds no new layer (and so draws no random numbers). The new
        model's ``training`` flag copies this one's, but the shared layers keep
        their modes: call ``.train()`` or ``.eval()`` on the result to change
        them. Learnt priors of the kept layers are copied.
        """
        if not 1 <= num_layers <= self.num_layers:
            raise ValueError(
                f"num_layers must be in [1, {self.num_layers}], got {num_layers}"
            )
        model = HQA.__new__(HQA)
        CompressionModel.__init__(model)
        model._setup(self.config, nn.ModuleList(self.layers[:num_layers]))
        model._code_priors = {
            k: v for k, v in self._code_priors.items() if k <= num_layers
        }
        model.training = self.training  # nn.Module.train() would recurse
        return model

    def get_extra_state(self) -> dict[str, Any]:
        """The config as plain values (saved in the state dict as ``_extra_state``).

        Learnt priors, if any, are saved under ``"code_priors"`` (layer number as
        a string -> list of 16-bit frequencies).
        """
        state: dict[str, Any] = {
            "format": _FORMAT,
            "config": self.config.to_dict(),
            "num_layers": self.num_layers,
        }
        if self._code_priors:
            state["code_priors"] = {
                str(k): list(v) for k, v in sorted(self._code_priors.items())
            }
        return state

    def set_extra_state(self, state: Any) -> None:
        config = _config_from_extra_state(state)
        if config != self.config:
            raise ValueError(
                f"checkpoint is for HQA config {config.name!r} which differs from this "
                f"model's config {self.config.name!r}; build the model with "
                "HQA.from_state_dict(state_dict)"
            )
        priors = state.get("code_priors") or {}
        if not isinstance(priors, Mapping):
            raise ValueError("corrupt HQA state dict: 'code_priors' is not a mapping")
        self._code_priors = {}
        for key, freqs in priors.items():
            layer = int(key)
            if layer > self.config.num_layers or layer < 1:
                raise ValueError(f"corrupt HQA state dict: prior of layer {key}")
            if layer <= self.num_layers:  # priors of layers not built are dropped
                self.set_code_prior(layer, freqs)

    @classmethod
    def from_state_dict(
        cls, state_dict: Mapping[str, Any], num_layers: int | None = None
    ) -> HQA:
        """Rebuilds a model from its state dict alone (the config travels in it).

        Args:
            state_dict: from :meth:`state_dict`, e.g. ``torch.load(path,
                weights_only=True)``.
            num_layers: build this many layers: fewer than stored truncates the
                stack (the layers above are not loaded); layers above those
                stored in the checkpoint are freshly initialised (to train a
                layer on top of a trained stack). Default: as stored.
        """
        if not isinstance(state_dict, Mapping):
            raise ValueError(
                f"not an HQA state dict: a {type(state_dict).__name__}, not a mapping"
            )
        state = state_dict.get("_extra_state")
        config = _config_from_extra_state(state)
        try:
            stored = int(state["num_layers"])
        except (KeyError, TypeError, ValueError):
            raise ValueError("corrupt HQA state dict: bad 'num_layers'") from None
        model = cls(config, num_layers=stored if num_layers is None else num_layers)
        dropped = tuple(f"layers.{i}." for i in range(model.num_layers, stored))
        kept = {k: v for k, v in state_dict.items() if not k.startswith(dropped)}
        try:
            missing, unexpected = model.load_state_dict(kept, strict=False)
        except RuntimeError as err:  # e.g. tensors of the wrong shape
            reason = " ".join(str(err).split())
            raise ValueError(f"corrupt HQA state dict: {reason[:300]}") from None
        if unexpected:
            raise ValueError(f"unexpected keys in HQA state dict: {unexpected[:5]}")
        fresh = tuple(f"layers.{i}." for i in range(stored, model.num_layers))
        not_fresh = [k for k in missing if not k.startswith(fresh)]
        if not_fresh:
            raise ValueError(f"missing keys in HQA state dict: {not_fresh[:5]}")
        return model

    # ---------------------------------------------------------------- helpers
    def _check_image(self, x: Tensor) -> None:
        c = self.config.in_channels
        if not isinstance(x, Tensor):
            raise TypeError(f"images must be a tensor, got {type(x).__name__}")
        if x.dim() != 4 or x.shape[1] != c:
            raise ValueError(
                f"HQA config {self.config.name!r} expects images of shape "
                f"(B, {c}, H, W), "
                f"got {tuple(x.shape)}"
            )
        if not x.is_floating_point():
            raise TypeError(f"images must be floating point in [0, 1], got {x.dtype}")
        if x.shape[0] == 0 or x.shape[2] == 0 or x.shape[3] == 0:
            raise ValueError(f"empty batch or image: shape {tuple(x.shape)}")

    def _pad(self, x: Tensor) -> Tensor:
        self._check_image(x)
        dtype = self.top.quantizer.codebook.dtype
        if x.dtype != dtype:  # e.g. float64 images for a float32 model
            x = x.to(dtype)
        f = self.downsampling
        pad_h, pad_w = -x.shape[-2] % f, -x.shape[-1] % f
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        return x


def _checked_shape(shape: Any) -> tuple[int, int]:
    """(H, W) from a ``decompress`` shape, or CorruptStreamError."""
    try:
        height, width = (operator.index(s) for s in shape)
    except (TypeError, ValueError):
        raise CorruptStreamError(
            f"shape must be two integers (H, W), got {shape!r}"
        ) from None
    if height < 1 or width < 1 or height * width > MAX_PIXELS:
        raise CorruptStreamError(
            f"shape must be (H, W) with H, W >= 1 and H * W <= {MAX_PIXELS}, "
            f"got ({height}, {width})"
        )
    return height, width


def _config_from_extra_state(state: Any) -> HQAConfig:
    if not isinstance(state, Mapping) or state.get("format") != _FORMAT:
        raise ValueError(
            "not an HQA state dict: '_extra_state' with the model config is missing "
            "(was it saved by compressai_hqa?)"
        )
    try:
        return HQAConfig.from_dict(state["config"])
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"corrupt HQA state dict: bad config ({err})") from None
