"""The stack of HQA layers: greedy structure and the decoder of Algorithm 3."""

from __future__ import annotations

import math

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeAlias

import torch
import torch.nn as nn
import torch.nn.functional as F

from compressai.models import CompressionModel
from torch import Tensor

from compressai_hqa.configs import HQAConfig
from compressai_hqa.decoding import Decoding
from compressai_hqa.families import get_config
from compressai_hqa.models.layer import HQALayer

if TYPE_CHECKING:
    from compressai_hqa.models.mmse import MMSEDecoders

__all__ = ["HQAStack", "MMSESource"]

#: What :meth:`HQAStack.set_mmse` takes: MMSE decoders, or a function that
#: loads them for the stack it is given (called on first use).
MMSESource: TypeAlias = "MMSEDecoders | Callable[[HQAStack], MMSEDecoders]"

#: How to get MMSE decoders, for the error of a model without them.
_MMSE_HINT = (
    "train them with python -m compressai_hqa.training.mmse and attach them with "
    "model.set_mmse(compressai_hqa.zoo.mmse.mmse_decoders(model, PATH)); the "
    "pretrained zoo models (compressai_hqa.zoo.hqa(pretrained=True)) carry theirs"
)


class HQAStack(CompressionModel):
    r"""A stack of :class:`HQALayer`\s: the base of :class:`~compressai_hqa.HQA`.

    Layer 1 reconstructs pixels, layer l >= 2 the normalised continuous codes of
    layer l-1. ``encode`` is continuous all the way up; ``quantize`` takes the
    top layer's codes; ``decode`` walks down the stack, re-quantising at every
    layer (paper Algorithm 3). Inputs of any size are padded (replicate) to a
    multiple of the downsampling factor and cropped back.

    In training mode only the top layer trains: lower layers stay in eval mode
    (frozen normalisation statistics, no dropout, no code resetting), whatever
    ``model.train()`` is called on. The layers start with the default training
    settings; a trainer sets its own through
    :meth:`HQALayer.configure_training`.

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
        in_channels, lower_codes = config.in_channels, None
        for i, layer_config in enumerate(config.layers[:n]):
            layers.append(
                HQALayer(
                    in_channels,
                    layer_config,
                    bottom=i == 0,
                    lower_codes=lower_codes,
                )
            )
            in_channels = layer_config.codebook_dim
            lower_codes = layer_config.codebook_size
        self._setup(config, nn.ModuleList(layers))

    def _setup(self, config: HQAConfig, layers: nn.ModuleList) -> None:
        self.config = config
        self.layers = layers
        self.set_mmse(None)

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
    def codebook_size(self) -> int:
        """Number of codes K of the transmitted (top-layer) codebook."""
        return self.top.codebook_size

    @property
    def device(self) -> torch.device:
        return self.top.codebook.device

    def latent_shape(self, height: int, width: int) -> tuple[int, int]:
        """Shape of the transmitted code grid for an image of this size."""
        f = self.downsampling
        return math.ceil(height / f), math.ceil(width / f)

    def bits(self, height: int, width: int) -> int:
        """Ideal rate in bits of one image of this size: codes x log2 K."""
        h, w = self.latent_shape(height, width)
        return h * w * self.config.layers[self.num_layers - 1].bits_per_code

    # --------------------------------------------------------------- training
    def train(self, mode: bool = True) -> HQAStack:
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

    def training_inputs(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        """What the top layer trains on: :meth:`layer_input` and, for a
        cross-entropy (HAMs) layer, the lower layer's argmin codes of it."""
        target = self.layer_input(x)
        if self.top.target != "ce":
            return target, None
        with torch.no_grad():
            return target, self.layers[-2].quantize(target)

    # -------------------------------------------------------------- inference
    def encode(self, x: Tensor) -> Tensor:
        """Continuous top-layer codes z_e (no quantisation on the way up)."""
        h = self._pad(x)
        for layer in self.layers:
            h = layer.encode(h)
        return h

    def quantize(self, x: Tensor, decoding: Decoding | str = "argmin") -> Tensor:
        """Top-layer code indices (B, h, w) of images ``x`` (B, C, H, W): the
        nearest codes, or draws from q(k | z_e) (``"sample"``, at the decoding's
        temperature).

        Raises:
            ValueError: a mode the top layer cannot pick codes by.
        """
        return self.top.quantize(self.encode(x), decoding)

    def logits(self, x: Tensor) -> Tensor:
        """Unnormalised log posterior of the top-layer codes, (B, h, w, K)."""
        return self.top.logits(self.encode(x))

    def code_grids(
        self, height: int, width: int, codes: Sequence[int] | Tensor | None = None
    ) -> Tensor:
        """Top-layer index grids (N, h, w) of images of this size, grid ``i``
        filled with ``codes[i]`` (default: every code, 0 to K - 1)."""
        h, w = self.latent_shape(height, width)
        if codes is None:
            codes = torch.arange(self.codebook_size, device=self.device)
        codes = torch.as_tensor(codes, dtype=torch.int64, device=self.device)
        return codes.view(-1, 1, 1).expand(-1, h, w).contiguous()

    def decode(
        self,
        indices: Tensor,
        decoding: Decoding | str = "argmin",
        size: Sequence[int] | None = None,
    ) -> Tensor:
        """Images from top-layer code indices (paper Algorithm 3).

        Args:
            indices: code indices (B, h, w) of the top layer.
            decoding: how lower layers re-quantise, a
                :class:`~compressai_hqa.decoding.Decoding` or a mode name:
                ``"argmin"`` (deterministic, the default), ``"sample"`` (a draw
                from each posterior), ``"average"`` (the mean of
                ``num_samples`` sampled decodes, paper Figure 6) or ``"mmse"``
                (no walk: the MMSE decoder of the top layer, see
                :meth:`set_mmse`; least squared error, deterministic).
            size: crop the output to this (H, W).

        Raises:
            ValueError: ``indices`` are not (B, h, w), a layer cannot decode
                by the mode (an EMA codebook draws nothing), or ``"mmse"``
                without an MMSE decoder of the top layer.
        """
        if indices.dim() != 3:
            raise ValueError(f"indices must be (B, h, w), got {tuple(indices.shape)}")
        decoding = Decoding.of(decoding)
        if decoding.method.direct:
            decoders = self.mmse_decoders(decoding.mode)
            return decoders(indices.to(self.device), self.num_layers, size)
        return decoding.decode(lambda walk: self._walk(indices, walk, size))

    def reconstruct(
        self,
        x: Tensor,
        decoding: Decoding | str = "argmin",
        sample_top: bool = False,
    ) -> Tensor:
        """Reconstructions of images ``x`` without a bitstream (paper Algorithm 3).

        Args:
            x: images (B, C, H, W) in [0, 1].
            decoding: how the lower layers re-quantise (see :meth:`decode`).
            sample_top: also draw the top code from q(k | z_e) (at the
                decoding's temperature, from its random source, before the
                lower layers' draws) instead of taking the argmin, as the
                paper's Algorithm 3 does. :meth:`compress` always transmits the
                argmin code.
        """
        decoding = Decoding.of(decoding).bound()
        top = decoding.replace(mode="sample") if sample_top else Decoding()
        return self.decode(self.quantize(x, top), decoding, x.shape[-2:])

    def _walk(
        self, indices: Tensor, decoding: Decoding, size: Sequence[int] | None
    ) -> Tensor:
        """One walk down the stack, each lower layer's codes picked by
        ``decoding``."""
        h = self.top.decode(self.top.embed(indices.to(self.device)))
        for i in reversed(range(self.num_layers - 1)):
            layer, above = self.layers[i], self.layers[i + 1]
            codes = above.codes_below(h, layer, decoding)
            h = layer.decode(layer.embed(codes))
        if size is not None:
            h = h[..., : size[0], : size[1]]
        return h

    # ---------------------------------------------------------- MMSE decoders
    def set_mmse(self, source: MMSESource | None) -> None:
        """Attaches the MMSE decoders that ``decoding="mmse"`` uses (None: none).

        They are kept outside the module tree: the state dict, the parameters
        and the weights fingerprint of files are the stack's alone, and the
        same file decodes with or without them. :meth:`truncate` keeps them.

        Args:
            source: :class:`~compressai_hqa.models.mmse.MMSEDecoders` of this
                stack (checked now), or a function ``source(stack)`` that loads
                them (called on the first MMSE decode, e.g.
                :func:`compressai_hqa.zoo.mmse.pretrained_mmse`), or None.

        Raises:
            ValueError: decoders trained on another stack's codes.
        """
        if isinstance(source, nn.Module):
            source.check_stack(self)  # type: ignore[operator]
        self._keep_mmse(source)

    def _keep_mmse(self, source: MMSESource | None) -> None:
        # a plain attribute, not a submodule: outside the state dict
        object.__setattr__(self, "_mmse_source", source)

    @property
    def mmse_source(self) -> MMSESource | None:
        """What :meth:`set_mmse` attached: decoders, their loader, or None."""
        return self.__dict__["_mmse_source"]

    def mmse_decoders(self, mode: str = "mmse") -> MMSEDecoders:
        """The attached MMSE decoders (loaded now if a loader was attached), on
        this stack's device, with one for the top layer.

        Args:
            mode: the decoding mode that needs them (for the error message).

        Raises:
            ValueError: none attached, none for the top layer, or the loader
                failed (e.g. decoders of another stack).
        """
        source = self.mmse_source
        if source is not None and not isinstance(source, nn.Module):
            try:
                self.set_mmse(source(self))  # checked against this stack
            except (RuntimeError, OSError, ValueError) as err:
                raise ValueError(f"could not load the MMSE decoders: {err}") from err
            source = self.mmse_source
        if source is None or self.num_layers not in source.layers:
            what = "no MMSE decoders" if source is None else "none for its layer"
            raise ValueError(
                f"decoding mode {mode!r} needs the MMSE decoder of layer "
                f"{self.num_layers}, and this model carries {what}: {_MMSE_HINT}"
            )
        return source.to(self.device)

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
        dtype = self.top.codebook.dtype
        if x.dtype != dtype:  # e.g. float64 images for a float32 model
            x = x.to(dtype)
        f = self.downsampling
        pad_h, pad_w = -x.shape[-2] % f, -x.shape[-1] % f
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        return x
