"""One MMSE decoder per layer of a stack, and their state dict.

The state dict of :class:`MMSEDecoders` holds the decoders' tensors
(``decoders.<layer>.<name>``) and ``_extra_state``, plain values only::

    {"format": FORMAT, "config": the stack's config name,
     "layers": {"<layer>": {"kind", "width", "codes_digest"}, ...}}

so that ``torch.load(path, weights_only=True)`` reads it and
:meth:`MMSEDecoders.from_state_dict` rebuilds the decoders for a stack.
"""

from __future__ import annotations

import hashlib

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

import torch
import torch.nn as nn

from torch import Tensor

from compressai_hqa.models.stack import HQAStack

from .kinds import CodeNet, CodeTable, MMSESpec, PathDecoder

__all__ = ["FORMAT", "MMSEDecoders", "codes_digest"]

#: ``_extra_state["format"]`` of an :class:`MMSEDecoders` state dict.
FORMAT = "compressai_hqa.mmse/1"


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
