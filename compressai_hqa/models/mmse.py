"""Distortion-end (MMSE) decoders: pixels from one layer's code map, for low MSE.

Argmin decoding re-quantises at every layer below the transmitted one (paper
Algorithm 3): each lower layer decodes to one plausible code map, not to the
average of those the transmitted codes allow, so its squared error is well above
what the codes permit. An MMSE decoder maps the code map (B, h, w) of layer
``l`` straight to the image that minimises the expected squared error given the
codes, learnt from the argmin codes of training images. It reads the same
bitstream; only the decoding differs. Three kinds (:data:`KINDS`):

* ``"path"``: :class:`PathDecoder`, a copy of the layer's decoding path (the
  code embedding of layer ``l``, then the decoders of layers ``l`` to 1) run
  continuously, without re-quantisation, initialised from the stack and
  fine-tuned for pixel MSE.
* ``"net"``: :class:`CodeNet`, a fresh network reading the codes (an embedding
  and a 3x3 convolution per x2 upsampling).
* ``"table"``: :class:`CodeTable`, one image patch per code, the mean of the
  training images whose code it is: the exact MMSE decoder of a 1x1 code map.

:class:`MMSEDecoders` holds one decoder per layer of a stack. Its state dict
carries the kinds and a digest of the stack layers that decide the codes (in
``_extra_state``, plain values), so it loads with ``torch.load(...,
weights_only=True)`` and refuses a stack whose codes it was not trained on.
"""

from __future__ import annotations

import copy
import hashlib

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from torch import Tensor

from compressai_hqa.models.stack import HQAStack

__all__ = [
    "FORMAT",
    "KINDS",
    "CodeNet",
    "CodeTable",
    "MMSEDecoders",
    "MMSESpec",
    "PathDecoder",
    "codes_digest",
]

#: ``_extra_state["format"]`` of an :class:`MMSEDecoders` state dict.
FORMAT = "compressai_hqa.mmse/1"
#: The kinds of MMSE decoder (see the module docstring).
KINDS = ("path", "net", "table")


@dataclass(frozen=True)
class MMSESpec:
    """What the MMSE decoder of one layer is.

    Args:
        kind: one of :data:`KINDS`.
        width: hidden channels of the first convolution of a ``"net"`` (halved
            at each upsampling, down to 16); unused by the other kinds.
    """

    kind: str = "path"
    width: int = 128

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if self.width < 1:
            raise ValueError(f"width must be >= 1, got {self.width}")


def _crop(images: Tensor, size: Sequence[int] | None) -> Tensor:
    return images if size is None else images[..., : size[0], : size[1]]


def _check_indices(indices: Tensor, codebook_size: int) -> None:
    if indices.dim() != 3:
        raise ValueError(f"indices must be (B, h, w), got {tuple(indices.shape)}")
    if indices.is_floating_point() or indices.is_complex():
        raise TypeError(f"indices must be integers, got {indices.dtype}")
    if indices.numel() and not 0 <= int(indices.min()) <= int(indices.max()) < (
        codebook_size
    ):
        raise ValueError(f"code indices must be in [0, {codebook_size})")


class _Affine(nn.Module):
    """``x * scale + shift`` per channel: a frozen normaliser's inverse."""

    def __init__(self, scale: Tensor, shift: Tensor) -> None:
        super().__init__()
        self.register_buffer("scale", scale.detach().float().view(1, -1, 1, 1))
        self.register_buffer("shift", shift.detach().float().view(1, -1, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale.to(x.dtype) + self.shift.to(x.dtype)


class PathDecoder(nn.Module):
    """The decoding path of layer ``layer`` of ``stack``, continuous.

    ``embedding -> decoder l -> unnormalise -> decoder l-1 -> ... -> decoder 1``:
    argmin decoding without the re-quantisation between layers, with its own
    copy of the weights (initialised from ``stack``'s).

    Args:
        stack: the trained stack (its weights are copied, not shared).
        layer: the layer whose code map is decoded (1-based).

    Raises:
        ValueError: a bad layer, or a cross-entropy (HAMs) layer on the path.
    """

    def __init__(self, stack: HQAStack, layer: int) -> None:
        super().__init__()
        if not 1 <= layer <= stack.num_layers:
            raise ValueError(f"layer must be in [1, {stack.num_layers}], got {layer}")
        layers = list(stack.layers[:layer])
        if any(lay.target != "mse" for lay in layers):
            raise ValueError("a path decoder needs layers that reconstruct z_e (mse)")
        self.codebook_size = layers[-1].codebook_size
        self.embedding = nn.Parameter(layers[-1].codebook.detach().clone().float())
        # index 0 is layer 1 (pixels); forward runs them top-down
        self.decoders = nn.ModuleList(copy.deepcopy(lay.decoder) for lay in layers)
        self.unnormalize = nn.ModuleList(
            _Affine(lay.normalizer.std, lay.normalizer.mean)
            if lay.normalizer is not None
            else nn.Identity()
            for lay in layers
        )
        for p in self.parameters():  # the stack's may be frozen
            p.requires_grad_(True)

    def forward(self, indices: Tensor, size: Sequence[int] | None = None) -> Tensor:
        """Images (B, C, H, W) from code indices (B, h, w), cropped to ``size``."""
        _check_indices(indices, self.codebook_size)
        h = F.embedding(indices.long(), self.embedding).permute(0, 3, 1, 2)
        for decoder, unnormalize in zip(
            reversed(self.decoders), reversed(self.unnormalize), strict=True
        ):
            h = unnormalize(decoder(h))
        return _crop(h, size)


class CodeNet(nn.Module):
    """A fresh decoder of code maps: embedding, then conv + x2 upsampling blocks.

    ``Embedding(K, D) -> Conv3x3(D, width) -> Mish -> [x2 nearest -> Conv3x3 ->
    Mish] x log2(factor) -> Conv3x3(., C) -> sigmoid``; the widths halve at each
    upsampling, down to 16.

    Args:
        codebook_size: number of codes K.
        out_channels: image channels C.
        factor: image pixels per code along each side (a power of two).
        width: channels of the first convolution.
        dim: embedding dimension D.
    """

    def __init__(
        self,
        codebook_size: int,
        out_channels: int,
        factor: int,
        width: int = 128,
        dim: int = 64,
    ) -> None:
        super().__init__()
        if factor < 1 or factor & (factor - 1):
            raise ValueError(f"factor must be a power of two, got {factor}")
        self.codebook_size = codebook_size
        self.embedding = nn.Embedding(codebook_size, dim)
        blocks: list[nn.Module] = [nn.Conv2d(dim, width, 3, padding=1), nn.Mish()]
        channels = width
        for _ in range(factor.bit_length() - 1):
            narrower = max(channels // 2, 16)
            blocks += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv2d(channels, narrower, 3, padding=1),
                nn.Mish(),
            ]
            channels = narrower
        blocks += [nn.Conv2d(channels, out_channels, 3, padding=1), nn.Sigmoid()]
        self.net = nn.Sequential(*blocks)

    def forward(self, indices: Tensor, size: Sequence[int] | None = None) -> Tensor:
        """Images (B, C, H, W) from code indices (B, h, w), cropped to ``size``."""
        _check_indices(indices, self.codebook_size)
        h = self.embedding(indices.long()).permute(0, 3, 1, 2)
        return _crop(self.net(h), size)


class CodeTable(nn.Module):
    """One (C, f, f) patch per code, tiled over the code map.

    Filled with the mean of the training images sharing each code (see
    :func:`compressai_hqa.training.mmse.fit_table`), it is the exact MMSE
    decoder of a 1x1 code map (the mean of a partition cell); on larger maps it
    is the patch-wise mean pooled over positions.

    Args:
        codebook_size: number of codes K.
        out_channels: image channels C.
        factor: patch side f (image pixels per code along each side).
    """

    means: Tensor

    def __init__(self, codebook_size: int, out_channels: int, factor: int) -> None:
        super().__init__()
        self.codebook_size = codebook_size
        self.register_buffer(
            "means", torch.zeros(codebook_size, out_channels, factor, factor)
        )

    def forward(self, indices: Tensor, size: Sequence[int] | None = None) -> Tensor:
        """Images (B, C, h f, w f) from code indices (B, h, w), cropped to ``size``."""
        _check_indices(indices, self.codebook_size)
        b, h, w = indices.shape
        _, c, f, _ = self.means.shape
        patches = self.means[indices.long()]  # (B, h, w, C, f, f)
        images = patches.permute(0, 3, 1, 4, 2, 5).reshape(b, c, h * f, w * f)
        return _crop(images, size)


def codes_digest(stack: HQAStack, layer: int) -> str:
    """SHA-256 (hex) of what decides the codes of layer ``layer``: the tensors
    of layers 1 to ``layer`` other than their decoders', in key order, as
    float32 (so a half-precision copy of the same stack has the same digest only
    if its values are unchanged)."""
    digest = hashlib.sha256(b"compressai_hqa.mmse.codes\0")
    prefixes = tuple(f"layers.{i}." for i in range(layer))
    for key, value in sorted(stack.state_dict().items()):
        if not isinstance(value, Tensor) or not key.startswith(prefixes):
            continue
        if ".decoder." in key:
            continue
        data = value.detach().to("cpu", torch.float64).contiguous()
        digest.update(f"{key}\0{tuple(value.shape)}\0".encode())
        digest.update(data.numpy().tobytes())
    return digest.hexdigest()


def _build(spec: MMSESpec, stack: HQAStack, layer: int) -> nn.Module:
    config = stack.config
    codes = config.layers[layer - 1].codebook_size
    factor = config.downsampling(layer)
    if spec.kind == "path":
        return PathDecoder(stack, layer)
    if spec.kind == "net":
        return CodeNet(codes, config.in_channels, factor, spec.width)
    return CodeTable(codes, config.in_channels, factor)


class MMSEDecoders(nn.Module):
    """The MMSE decoders of some layers of a stack, one module per layer.

    Args:
        stack: the stack whose codes are decoded (a ``"path"`` copies its
            weights; the digests of its layers are recorded).
        specs: layer (1-based) -> :class:`MMSESpec` (or a kind name).

    Raises:
        ValueError: a layer outside the stack, or no layer at all.
    """

    def __init__(self, stack: HQAStack, specs: Mapping[int, MMSESpec | str]) -> None:
        super().__init__()
        if not specs:
            raise ValueError("MMSEDecoders needs at least one layer")
        self.config_name = stack.config.name
        self.specs: dict[int, MMSESpec] = {}
        self.digests: dict[int, str] = {}
        modules = {}
        for layer, spec in sorted(specs.items()):
            spec = MMSESpec(spec) if isinstance(spec, str) else spec
            if not 1 <= layer <= stack.num_layers:
                raise ValueError(
                    f"layer must be in [1, {stack.num_layers}], got {layer}"
                )
            self.specs[layer] = spec
            self.digests[layer] = codes_digest(stack, layer)
            modules[str(layer)] = _build(spec, stack, layer)
        self.decoders = nn.ModuleDict(modules)

    @property
    def layers(self) -> tuple[int, ...]:
        """The layers that have a decoder, ascending."""
        return tuple(self.specs)

    def layer(self, layer: int) -> nn.Module:
        """The decoder of ``layer``: ``module(indices, size)`` gives images.

        Raises:
            KeyError: no decoder for this layer.
        """
        if layer not in self.specs:
            raise KeyError(f"no MMSE decoder for layer {layer} (have {self.layers})")
        return self.decoders[str(layer)]

    def forward(
        self, indices: Tensor, layer: int, size: Sequence[int] | None = None
    ) -> Tensor:
        """Images (B, C, H, W) from the code indices (B, h, w) of ``layer``,
        cropped to ``size`` (H, W)."""
        return self.layer(layer)(indices, size)

    def check_stack(self, stack: HQAStack) -> None:
        """Raises ValueError unless ``stack``'s codes are those these decoders
        were trained on, for every layer both have."""
        if stack.config.name != self.config_name:
            raise ValueError(
                f"MMSE decoders of config {self.config_name!r}, stack of "
                f"{stack.config.name!r}"
            )
        for layer in self.layers:
            if (
                layer <= stack.num_layers
                and codes_digest(stack, layer) != (self.digests[layer])
            ):
                raise ValueError(
                    f"the stack's layers 1-{layer} differ from those the MMSE "
                    "decoder of that layer was trained on"
                )

    # ------------------------------------------------------------ state dict
    def get_extra_state(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "config": self.config_name,
            "layers": {
                str(k): {**asdict(s), "codes_digest": self.digests[k]}
                for k, s in self.specs.items()
            },
        }

    def set_extra_state(self, state: Any) -> None:
        specs, _ = _read_extra_state(state)
        if specs != self.specs:
            raise ValueError(
                "the state dict holds other MMSE decoders than this module's; "
                "build it with MMSEDecoders.from_state_dict"
            )

    @classmethod
    def from_state_dict(
        cls, stack: HQAStack, state_dict: Mapping[str, Any], check: bool = True
    ) -> MMSEDecoders:
        """Builds the decoders a state dict holds, for ``stack``, and loads them.

        Args:
            stack: the stack whose codes are decoded.
            state_dict: from :meth:`state_dict` (float16 tensors are cast).
            check: raise unless ``stack`` is the one they were trained for (see
                :meth:`check_stack`).

        Raises:
            ValueError: not an MMSE state dict, or (``check``) another stack.
        """
        specs, digests = _read_extra_state(state_dict.get("_extra_state"))
        specs = {k: s for k, s in specs.items() if k <= stack.num_layers}
        if not specs:
            raise ValueError(
                f"the state dict has no MMSE decoder for layers 1-{stack.num_layers}"
            )
        model = cls(stack, specs)
        keep = tuple(f"decoders.{k}." for k in specs)
        tensors = {k: v for k, v in state_dict.items() if k.startswith(keep)}
        model.load_state_dict(tensors, strict=False)
        missing = set(model.state_dict()) - set(tensors) - {"_extra_state"}
        if missing:
            raise ValueError(f"the state dict lacks {sorted(missing)[:3]}...")
        model.digests = {k: digests[k] for k in specs}
        if check:
            model.check_stack(stack)
        return model.eval()


def _read_extra_state(state: Any) -> tuple[dict[int, MMSESpec], dict[int, str]]:
    if not isinstance(state, Mapping) or state.get("format") != FORMAT:
        raise ValueError(
            "not an MMSE decoders state dict (its '_extra_state' is missing)"
        )
    specs, digests = {}, {}
    try:
        for key, value in state["layers"].items():
            specs[int(key)] = MMSESpec(value["kind"], int(value["width"]))
            digests[int(key)] = str(value["codes_digest"])
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"corrupt MMSE decoders state: {exc}") from None
    return specs, digests
