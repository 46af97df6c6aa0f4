"""What a ``.hqa`` file is tied to: the model's name and its weights fingerprint."""

from __future__ import annotations

import hashlib
import json
import struct

import torch

from torch import Tensor

from compressai_hqa.codec.format import FINGERPRINT_BYTES
from compressai_hqa.entropy_models import ContextModel
from compressai_hqa.models import HQA

__all__ = ["model_name", "weights_fingerprint"]

_FINGERPRINT_TAG = b"compressai_hqa.codec weights/1\0"


def model_name(model: HQA) -> str:
    """The name stored in files: ``hqa-<config name>``, e.g. ``hqa-mnist``.

    Args:
        model: the HQA stack.

    Returns:
        The name.
    """
    return f"hqa-{model.config.name}"


def weights_fingerprint(
    model: HQA, prior: str = "uniform", context: ContextModel | None = None
) -> bytes:
    """16 bytes identifying what decoding a file depends on.

    The first 16 bytes of the SHA-256 of: the image channels and the
    architecture of the model's layers (JSON, sorted keys), every tensor of its
    state dict in key order (name, dtype, shape, raw little-endian bytes; the
    truncated model's layers only), the prior's name and, for the learned prior,
    its 16-bit frequency table, for the context prior the SHA-256 of its
    integer tables (``context``, :attr:`ContextModel.digest`).

    Args:
        model: the HQA stack, truncated at the layer of the file.
        prior: ``"uniform"``, ``"learned"`` or ``"context"``.
        context: the context model (``prior="context"`` only).

    Returns:
        The 16 bytes.

    Raises:
        ValueError: no learned prior in the model, or no ``context`` for the
            context prior.
    """
    digest = hashlib.sha256(_FINGERPRINT_TAG)
    config = model.config
    architecture = {
        "in_channels": config.in_channels,
        "layers": [c.architecture() for c in config.layers[: model.num_layers]],
    }
    digest.update(json.dumps(architecture, sort_keys=True).encode())
    for key, value in sorted(model.state_dict().items()):
        if not isinstance(value, Tensor):
            continue  # _extra_state: the config, hashed above
        tensor = value.detach().to("cpu").contiguous().reshape(-1)
        meta = f"{key}\0{tensor.dtype}\0{tuple(value.shape)}\0"
        digest.update(meta.encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes())
    digest.update(prior.encode() + b"\0")
    if prior == "learned":
        freqs = model.coder("learned").frequencies
        digest.update(struct.pack(f"<{len(freqs)}I", *freqs))
    elif prior == "context":
        if context is None:
            raise ValueError("the context prior's fingerprint needs its model")
        digest.update(context.digest)
    return digest.digest()[:FINGERPRINT_BYTES]
