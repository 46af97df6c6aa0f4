"""Images to ``.hqa`` files and back with an HQA model (what the CLI runs).

``compress_images`` quantises images with the model (argmin codes of its top layer) and
writes one file under the uniform, learned or context prior
(:func:`~compressai_hqa.codec.context.payload_coder`); ``read_codes`` validates a file
against the model and returns the codes; ``decode_images`` turns them back into images
with the model's decoder. Both run the network as :mod:`compressai_hqa.codec.batching`
says: fixed chunks of images of one size, each on one intra-op thread (several at once
where the work is deterministic), so that an image's codes and pixels depend neither on
the other images nor on the thread count, within a memory budget decided before anything
is allocated (``max_memory``). The decoded image of ``x`` is
``model.decode(model.quantize(c), decoding)[0]`` for ``c`` the chunk of ``x`` and copies
of it (``run_chunk``). The context prior's entropy coding is per file (all maps position
by position, :class:`~compressai_hqa.entropy_models.ContextCoder`), its probabilities
integers: its codes do not depend on the chunks either.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from torch import Tensor

from compressai_hqa.codec.batching import (
    DEFAULT_MAX_MEMORY,
    Chunk,
    ChunkSizes,
    MemoryLimitError,
    check_budget,
    format_bytes,
    run_chunks,
    runs,
    workers,
)
from compressai_hqa.codec.code_counts import count_codes, estimate_code_priors
from compressai_hqa.codec.context import ContextPrior, context_model, payload_coder
from compressai_hqa.codec.fingerprint import model_name, weights_fingerprint
from compressai_hqa.codec.format import (
    MAX_CODES,
    Header,
    ImageSize,
    check_sizes,
    decode_payload,
    encode_payload,
    pack,
    unpack,
)
from compressai_hqa.decoding import Decoding
from compressai_hqa.entropy_models import ContextCoder
from compressai_hqa.errors import CorruptStreamError
from compressai_hqa.models import HQA
from compressai_hqa.models.memory import OVERHEAD

__all__ = [
    "DEFAULT_MAX_MEMORY",
    "MemoryLimitError",
    "WeightsMismatchError",
    "check_decode_memory",
    "check_model",
    "check_pixels",
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

# Bytes held per code and per image while a file's codes are decoded: int64
# indices, a Python int in the learned prior's list, a tensor view per image.
_INDEX_BYTES, _LIST_ITEM_BYTES, _VIEW_BYTES = 8, 40, 512


class WeightsMismatchError(CorruptStreamError):
    """A file was written with other weights (or another model) than the given.

    A :class:`~compressai_hqa.CorruptStreamError`: from the decoder's side, a
    file that does not fit the model cannot be decoded either.
    """


def _image_size(image: Tensor) -> ImageSize:
    if not isinstance(image, Tensor) or image.dim() != 3:
        shape = tuple(image.shape) if isinstance(image, Tensor) else type(image)
        raise ValueError(f"images must be (C, H, W) tensors, got {shape}")
    c, h, w = image.shape
    return ImageSize(int(h), int(w), int(c))


def _check_image(model: HQA, image: Tensor) -> ImageSize:
    size = _image_size(image)
    if size.channels != model.config.in_channels:
        raise ValueError(
            f"{model_name(model)} takes {model.config.in_channels}-channel "
            f"images, got {size.channels} channels"
        )
    if not image.is_floating_point():
        raise TypeError(f"images must be floating point, got {image.dtype}")
    check_sizes([size])
    return size


def check_pixels(x: Tensor) -> None:
    """Raises ValueError unless every value of ``x`` is finite and in [0, 1]."""
    if not bool(torch.isfinite(x).all()):
        raise ValueError("images must be finite: found NaN or infinite values")
    low, high = float(x.min()), float(x.max())
    if low < 0.0 or high > 1.0:
        hint = "; divide 8-bit pixel values by 255" if high > 1.0 else ""
        raise ValueError(
            f"images must be in [0, 1], found values from {low:g} to {high:g}{hint}"
        )


@torch.no_grad()
def compress_images(
    model: HQA,
    images: Iterable[Tensor],
    prior: str = "uniform",
    progress: Any = None,
    max_memory: int | None = DEFAULT_MAX_MEMORY,
    context_prior: ContextPrior | str | Path | None = None,
) -> bytes:
    """One ``.hqa`` file holding the top-layer codes of ``images``.

    Images of one size go through the network in fixed chunks on one thread
    (:mod:`compressai_hqa.codec.batching`): an image's codes do not depend on
    the other images.

    Args:
        model: the HQA stack, truncated at the layer to store.
        images: (C, H, W) float tensors in [0, 1] with the model's channels.
        prior: ``"uniform"`` (bit-packed, the paper's rate), ``"learned"`` or
            ``"context"``.
        progress: a tqdm-like bar to ``update(n)``, or None.
        max_memory: refuse an image size whose chunk would need more bytes
            than this, or (context prior) more codes than the context coder can
            code in this many bytes (estimated before encoding; None: no limit).
        context_prior: the context prior (see :func:`context_model`).

    Returns:
        The file's bytes.

    Raises:
        ValueError: bad images (wrong shape or channels, values outside [0, 1],
            NaN or infinite values, too large) or no such prior for the model.
        MemoryLimitError: an image needs more than ``max_memory`` (a ValueError).
        TypeError: images that are not floating point.
    """
    coder, fingerprint = payload_coder(model, prior, context_prior)
    device = model.device
    chunks = ChunkSizes(model, "encode")
    sizes: list[ImageSize] = []
    codes: list[np.ndarray] = []
    total = 0

    def checked(stream: Iterable[Tensor]) -> Iterator[tuple[ImageSize, Tensor]]:
        for image in stream:
            size = _check_image(model, image)
            if size not in chunks:
                check_budget(model, [size[:2]], "encode", max_memory)
            yield size, image

    sent: deque[tuple[ImageSize, int]] = deque()
    jobs = _encode_jobs(model, checked(images), chunks, sent)
    budget = None if max_memory is None else max_memory - OVERHEAD
    for indices in run_chunks(jobs, workers(device, True), budget):
        size, count = sent.popleft()
        flat = indices.reshape(count, -1).to("cpu", torch.int64).numpy()
        total += flat.size
        if total > MAX_CODES:
            raise ValueError(f"too many codes for one file (at most {MAX_CODES})")
        if isinstance(coder, ContextCoder):
            _check_entropy_memory(coder.encode_bytes(total), "encoding", max_memory)
        sizes.extend([size] * count)
        codes.append(flat.reshape(-1).astype(np.uint16))  # K <= 2^15
        if progress is not None:
            progress.update(count)
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


def _encode_jobs(
    model: HQA,
    images: Iterable[tuple[ImageSize, Tensor]],
    chunks: ChunkSizes,
    sent: deque[tuple[ImageSize, int]],
) -> Iterator[Chunk]:
    """The quantisation chunks of ``(size, image)`` pairs; each chunk's size and
    image count appended to ``sent`` (its results come back in that order)."""
    for size, batch in runs(images, chunks.__getitem__):
        x = torch.stack(batch).to(model.device)
        check_pixels(x)
        sent.append((size, len(batch)))
        yield Chunk(model.quantize, x, chunks[size], chunks.need(size))


def _check_entropy_memory(need: int, what: str, max_memory: int | None) -> None:
    """Raises MemoryLimitError if entropy coding needs more than ``max_memory``."""
    need += OVERHEAD
    if max_memory is not None and need > max_memory:
        raise MemoryLimitError(
            f"{what} these codes with the context prior needs about "
            f"{format_bytes(need)}, more than the {format_bytes(max_memory)} "
            "allowed; raise the limit with --max-memory (API: max_memory)"
        )


def _context_decode_bytes(coder: ContextCoder, header: Header) -> int:
    shapes = Counter(header.latent_shape(s) for s in header.sizes)
    return coder.decode_bytes(shapes)


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
    max_memory: int | None = DEFAULT_MAX_MEMORY,
) -> tuple[Header, list[Tensor]]:
    """The header and every image's codes (h, w) of a ``.hqa`` file.

    The whole file is validated (header, CRC, payload) before anything is
    returned. ``context_prior`` is that of a context-prior file (default: the
    shipped one, see :func:`context_model`).

    Raises:
        CorruptStreamError: a damaged, truncated, extended or unreadable file.
        WeightsMismatchError: the model cannot decode it (see :func:`check_model`).
        MemoryLimitError: decoding a context-prior payload would need more than
            ``max_memory`` (decided from the header, before decoding).
    """
    header, payload = unpack(data)
    try:
        coder, fingerprint = payload_coder(model, header.prior, context_prior)
    except ValueError as err:
        check_model(header, model, force=True)  # a wrong layer, K, ... first
        raise WeightsMismatchError(str(err)) from None
    check_model(header, model, force, fingerprint)
    if isinstance(coder, ContextCoder):
        need = _context_decode_bytes(coder, header)
        _check_entropy_memory(need, "decoding", max_memory)
    flat = torch.from_numpy(decode_payload(header, payload, coder))
    codes, start = [], 0
    for size, n in zip(header.sizes, header.codes_per_image, strict=True):
        codes.append(flat[start : start + n].view(header.latent_shape(size)))
        start += n
    return header, codes


def check_decode_memory(
    model: HQA,
    header: Header,
    mode: str = "argmin",
    max_memory: int | None = DEFAULT_MAX_MEMORY,
    context_prior: ContextPrior | str | Path | None = None,
) -> None:
    """Raises MemoryLimitError if decoding the file needs more than ``max_memory``.

    Decided from the header alone (no payload decoded, nothing allocated): the
    chunks' activations (:func:`~compressai_hqa.codec.batching.check_budget`)
    plus the codes of the whole file (int64, and the learned prior's list),
    and for the context prior the entropy decoder's own peak
    (:meth:`~compressai_hqa.entropy_models.ContextCoder.decode_bytes`).
    """
    if header.prior == "context":
        try:
            coder, _ = payload_coder(model, "context", context_prior)
        except ValueError:
            coder = None  # read_codes refuses the file
        if isinstance(coder, ContextCoder):
            need = _context_decode_bytes(coder, header)
            _check_entropy_memory(need, "decoding", max_memory)
    sizes = {(s.height, s.width) for s in set(header.sizes)}
    check_budget(model, sizes, mode, max_memory, _decode_extra(header))


def _decode_extra(header: Header) -> int:
    """Bytes held while the chunks are decoded: the file's codes and views."""
    per_code = _INDEX_BYTES + (_LIST_ITEM_BYTES if header.prior == "learned" else 0)
    return per_code * header.total_codes + _VIEW_BYTES * header.count


@torch.no_grad()
def decode_images(
    model: HQA,
    header: Header,
    codes: list[Tensor],
    decoding: Decoding | str = "argmin",
    max_memory: int | None = DEFAULT_MAX_MEMORY,
) -> Iterator[Tensor]:
    """Decoded images (C, H, W) in [0, 1] on the CPU, in file order.

    Images of one size are decoded in fixed chunks on one thread
    (:mod:`compressai_hqa.codec.batching`), so an image's pixels depend on its
    codes, the weights and ``decoding`` only, not on the other images; a
    stochastic decoding draws from one random stream (its seed, or its
    generator) chunk after chunk in file order (see
    :meth:`~compressai_hqa.HQA.decode`).

    Raises:
        MemoryLimitError: decoding needs more than ``max_memory`` bytes
            (checked before decoding anything; see :func:`check_decode_memory`).
    """
    decoding = Decoding.of(decoding).bound()
    check_decode_memory(model, header, decoding.mode, max_memory)
    chunks = ChunkSizes(model, decoding.mode)

    def jobs() -> Iterator[Chunk]:
        items = zip(header.sizes, codes, strict=True)
        for size, batch in runs(items, chunks.__getitem__):
            decode = partial(model.decode, decoding=decoding, size=size[:2])
            x = torch.stack(batch).to(model.device)
            yield Chunk(decode, x, chunks[size], chunks.need(size))

    count = workers(model.device, not decoding.stochastic)
    budget = None
    if max_memory is not None:
        budget = max_memory - OVERHEAD - _decode_extra(header)
    for x_hat in run_chunks(jobs(), count, budget):
        yield from x_hat.float().cpu().unbind(0)


def decompress_images(
    data: bytes,
    model: HQA,
    decoding: Decoding | str = "argmin",
    force: bool = False,
    max_memory: int | None = DEFAULT_MAX_MEMORY,
    context_prior: ContextPrior | str | Path | None = None,
) -> list[Tensor]:
    """All images of a ``.hqa`` file (see :func:`read_codes`, :func:`decode_images`)."""
    header, codes = read_codes(data, model, force, context_prior, max_memory)
    return list(decode_images(model, header, codes, decoding, max_memory))
