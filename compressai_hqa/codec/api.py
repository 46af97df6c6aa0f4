"""Images to ``.hqa`` files and back with an HQA model (what the CLI runs).

``compress_images`` quantises images with the model (argmin codes of its top
layer, in batches of consecutive same-size images) and writes one file under
the uniform, learned or context prior (:func:`payload_coder`);
``read_codes`` validates a file against the model and returns the codes;
``decode_images`` turns them back into images with the model's decoder.
For a batch ``x`` of same-size images (at most ``batch_size``), the images
decoded from ``compress_images(model, x)`` are exactly
``model.decompress(model.compress(x), mode, generator)["x_hat"]``.
"""

from __future__ import annotations

import hashlib
import json
import struct

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from torch import Tensor

from compressai_hqa.codec.context import (
    ContextPrior,
    load_context_prior,
    shipped_context_prior,
)
from compressai_hqa.codec.format import (
    FINGERPRINT_BYTES,
    MAX_CODES,
    Header,
    ImageSize,
    check_sizes,
    decode_payload,
    encode_payload,
    pack,
    unpack,
)
from compressai_hqa.entropy_models import CategoricalCoder, ContextCoder, ContextModel
from compressai_hqa.errors import CorruptStreamError
from compressai_hqa.models import HQA

__all__ = [
    "WeightsMismatchError",
    "check_model",
    "compress_images",
    "context_model",
    "count_codes",
    "decode_images",
    "decompress_images",
    "estimate_code_priors",
    "model_name",
    "payload_coder",
    "read_codes",
    "weights_fingerprint",
]

_FINGERPRINT_TAG = b"compressai_hqa.codec weights/1\0"


class WeightsMismatchError(CorruptStreamError):
    """A file was written with other weights (or another model) than the given.

    A :class:`~compressai_hqa.CorruptStreamError`: from the decoder's side, a
    file that does not fit the model cannot be decoded either.
    """


def model_name(model: HQA) -> str:
    """The name stored in files: ``hqa-<config name>``, e.g. ``hqa-mnist``."""
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


def context_model(
    model: HQA, context_prior: ContextPrior | str | Path | None = None
) -> ContextModel:
    """The context model of ``model``'s top layer, fitted for its weights.

    Args:
        model: the HQA stack, truncated at the layer to code.
        context_prior: a :class:`ContextPrior`, its file, or None for the
            shipped one of the model's config.

    Raises:
        ValueError: no context prior (for this layer, for these weights).
    """
    if isinstance(context_prior, (str, Path)):
        context_prior = load_context_prior(context_prior)
    if context_prior is None:
        context_prior = shipped_context_prior(model.config.name)
    if context_prior is None:
        raise ValueError(
            f"no context prior is shipped for {model_name(model)}: fit one with "
            "examples/estimate_context_prior.py and pass it (--context-prior)"
        )
    fingerprint = weights_fingerprint(model, "uniform")
    return context_prior.model_for(model.num_layers, fingerprint)


def payload_coder(
    model: HQA, prior: str, context_prior: ContextPrior | str | Path | None = None
) -> tuple[CategoricalCoder | ContextCoder, bytes]:
    """The coder of ``prior`` for ``model``'s codes, and the files' fingerprint.

    Raises:
        ValueError: unknown prior, or none of that kind for these weights.
    """
    if prior != "context":
        return model.coder(prior), weights_fingerprint(model, prior)
    context = context_model(model, context_prior)
    return ContextCoder(context), weights_fingerprint(model, prior, context)


def _image_size(image: Tensor) -> ImageSize:
    if not isinstance(image, Tensor) or image.dim() != 3:
        shape = tuple(image.shape) if isinstance(image, Tensor) else type(image)
        raise ValueError(f"images must be (C, H, W) tensors, got {shape}")
    c, h, w = image.shape
    return ImageSize(int(h), int(w), int(c))


def _batches(
    items: Iterable[tuple[ImageSize, Any]], batch_size: int
) -> Iterator[tuple[ImageSize, list[Any]]]:
    """Runs of at most ``batch_size`` consecutive items of one size."""
    size, batch = None, []
    for item_size, item in items:
        if batch and (item_size != size or len(batch) == batch_size):
            yield size, batch
            batch = []
        size = item_size
        batch.append(item)
    if batch:
        yield size, batch  # type: ignore[misc]


@torch.no_grad()
def compress_images(
    model: HQA,
    images: Iterable[Tensor],
    prior: str = "uniform",
    batch_size: int = 256,
    progress: Any = None,
    context_prior: ContextPrior | str | Path | None = None,
) -> bytes:
    """One ``.hqa`` file holding the top-layer codes of ``images``.

    Args:
        model: the HQA stack, truncated at the layer to store.
        images: (C, H, W) float tensors in [0, 1] with the model's channels.
        prior: ``"uniform"`` (bit-packed, the paper's rate), ``"learned"`` or
            ``"context"``.
        batch_size: images quantised at once (consecutive images of one size).
        progress: a tqdm-like bar to ``update(n)``, or None.
        context_prior: the context prior (see :func:`context_model`).

    Raises:
        ValueError: bad images (wrong shape or channels, NaN or infinite
            values, too large) or no such prior for the model.
        TypeError: images that are not floating point.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    coder, fingerprint = payload_coder(model, prior, context_prior)
    device = model.device
    sizes: list[ImageSize] = []
    codes: list[np.ndarray] = []
    total = 0

    def sized(stream: Iterable[Tensor]) -> Iterator[tuple[ImageSize, Tensor]]:
        for image in stream:
            size = _image_size(image)
            if size.channels != model.config.in_channels:
                raise ValueError(
                    f"{model_name(model)} takes {model.config.in_channels}-channel "
                    f"images, got {size.channels} channels"
                )
            if not image.is_floating_point():
                raise TypeError(f"images must be floating point, got {image.dtype}")
            check_sizes([size])
            yield size, image

    for size, batch in _batches(sized(images), batch_size):
        x = torch.stack(batch).to(device)
        if not bool(torch.isfinite(x).all()):
            raise ValueError("images must be finite: found NaN or infinite values")
        indices = model.quantize(x)
        flat = indices.reshape(len(batch), -1).to("cpu", torch.int64).numpy()
        total += flat.size
        if total > MAX_CODES:
            raise ValueError(f"too many codes for one file (at most {MAX_CODES})")
        sizes.extend([size] * len(batch))
        codes.append(flat.reshape(-1))
        if progress is not None:
            progress.update(len(batch))
    if not sizes:
        raise ValueError("no images to compress")
    header = Header(
        model=model_name(model),
        fingerprint=fingerprint,
        layer=model.num_layers,
        prior=prior,
        codebook_size=coder.codebook_size,
        factor=model.downsampling,
        sizes=tuple(sizes),
    )
    shapes = [header.latent_shape(s) for s in header.sizes]
    payload = encode_payload(
        np.concatenate(codes), prior, coder.codebook_size, coder, shapes
    )
    return pack(header, payload)


def check_model(
    header: Header, model: HQA, force: bool = False, fingerprint: bytes | None = None
) -> None:
    """Raises WeightsMismatchError unless ``model`` can decode the file.

    The layer, codebook size, downsampling factor and channels must always
    match; the weights fingerprint (default: ``weights_fingerprint(model,
    header.prior)``) must match unless ``force``.
    """
    config = model.config
    expected = {
        "layer": (header.layer, model.num_layers),
        "codebook size": (header.codebook_size, model.codebook_size),
        "downsampling": (header.factor, model.downsampling),
    }
    for what, (stored, actual) in expected.items():
        if stored != actual:
            raise WeightsMismatchError(
                f"the file was compressed with {header.model} at {what} {stored}, "
                f"the model has {actual}"
            )
    channels = {s.channels for s in set(header.sizes)}
    if channels != {config.in_channels}:
        raise WeightsMismatchError(
            f"the file holds {'/'.join(map(str, sorted(channels)))}-channel images, "
            f"the model takes {config.in_channels}"
        )
    if not force:
        try:
            actual = fingerprint or weights_fingerprint(model, header.prior)
        except ValueError as err:  # no learned prior in these weights
            raise WeightsMismatchError(str(err)) from None
        if actual != header.fingerprint:
            raise WeightsMismatchError(
                f"the file was compressed with other weights than these "
                f"({header.model}, fingerprint {header.fingerprint.hex()}; these: "
                f"{model_name(model)}, {actual.hex()}): pass the weights used "
                "(--weights) or force decoding (--force)"
            )


def read_codes(
    data: bytes,
    model: HQA,
    force: bool = False,
    context_prior: ContextPrior | str | Path | None = None,
) -> tuple[Header, list[Tensor]]:
    """The header and every image's codes (h, w) of a ``.hqa`` file.

    The whole file is validated (header, CRC, payload) before anything is
    returned. ``context_prior`` is that of a context-prior file (default: the
    shipped one, see :func:`context_model`).

    Raises:
        CorruptStreamError: a damaged, truncated, extended or unreadable file.
        WeightsMismatchError: the model cannot decode it (see :func:`check_model`).
    """
    header, payload = unpack(data)
    try:
        coder, fingerprint = payload_coder(model, header.prior, context_prior)
    except ValueError as err:
        check_model(header, model, force=True)  # a wrong layer, K, ... first
        raise WeightsMismatchError(str(err)) from None
    check_model(header, model, force, fingerprint)
    flat = torch.from_numpy(decode_payload(header, payload, coder))
    codes, start = [], 0
    for size, n in zip(header.sizes, header.codes_per_image, strict=True):
        codes.append(flat[start : start + n].view(header.latent_shape(size)))
        start += n
    return header, codes


@torch.no_grad()
def decode_images(
    model: HQA,
    header: Header,
    codes: list[Tensor],
    mode: str = "argmin",
    generator: torch.Generator | None = None,
    batch_size: int = 256,
    temperature: float = 1.0,
) -> Iterator[Tensor]:
    """Decoded images (C, H, W) in [0, 1] on the CPU, in file order.

    Images are decoded in batches of at most ``batch_size`` consecutive images
    of one size, all batches drawing from ``generator`` in ``"sample"`` mode, at
    ``temperature`` (see :meth:`~compressai_hqa.HQA.decode`).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    for size, batch in _batches(zip(header.sizes, codes, strict=True), batch_size):
        indices = torch.stack(batch).to(model.device)
        x_hat = model.decode(
            indices, mode, generator, size=size[:2], temperature=temperature
        )
        yield from x_hat.float().cpu().unbind(0)


def decompress_images(
    data: bytes,
    model: HQA,
    mode: str = "argmin",
    generator: torch.Generator | None = None,
    force: bool = False,
    batch_size: int = 256,
    temperature: float = 1.0,
    context_prior: ContextPrior | str | Path | None = None,
) -> list[Tensor]:
    """All images of a ``.hqa`` file (see :func:`read_codes`, :func:`decode_images`)."""
    header, codes = read_codes(data, model, force, context_prior)
    return list(
        decode_images(model, header, codes, mode, generator, batch_size, temperature)
    )


@torch.no_grad()
def count_codes(model: HQA, images: Tensor, batch_size: int = 1024) -> Tensor:
    """How often each top-layer code is the argmin code of ``images`` (K,) int64."""
    counts = torch.zeros(model.codebook_size, dtype=torch.int64)
    for start in range(0, len(images), batch_size):
        x = images[start : start + batch_size].to(model.device)
        codes = model.quantize(x).reshape(-1).cpu()
        counts += torch.bincount(codes, minlength=len(counts))
    return counts


def estimate_code_priors(
    stack: HQA, images: Tensor, batch_size: int = 1024
) -> dict[int, tuple[int, ...]]:
    """A learnt prior for every layer of ``stack``: floored 16-bit code frequencies.

    Counts the argmin codes of ``images`` (e.g. the training split) at every
    layer and quantises the counts with
    :func:`~compressai_hqa.entropy_models.quantize_frequencies` (every code keeps
    a frequency >= 1, so any code stays codable). Set them with
    :meth:`HQA.set_code_prior`.
    """
    from compressai_hqa.entropy_models import quantize_frequencies

    priors = {}
    for layer in range(1, stack.num_layers + 1):
        counts = count_codes(stack.truncate(layer).eval(), images, batch_size)
        priors[layer] = quantize_frequencies(counts.tolist())
    return priors
