"""What ``compressai-hqa compress|decompress|info`` do (:mod:`.cli` parses them).

Each command takes the parsed arguments and raises the errors that
:func:`compressai_hqa.codec.cli.run` turns into exit statuses: ``UsageError``
and ``WeightsMismatchError`` (1), ``DataError``, ``CorruptStreamError`` and
``MemoryLimitError`` (2). Only the payload goes to stdout; progress, warnings and
the one-line summary go to stderr (the summary not with ``--quiet``).
"""

from __future__ import annotations

import argparse
import io
import json
import sys

from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from typing import Any, BinaryIO

import torch

from torch import Tensor

from compressai_hqa.codec import format as fmt
from compressai_hqa.codec.api import (
    MemoryLimitError,
    check_decode_memory,
    compress_images,
    decode_images,
    model_name,
    payload_coder,
    read_codes,
)
from compressai_hqa.codec.batching import check_budget, format_bytes
from compressai_hqa.codec.outputs import (
    check_output_dir,
    check_output_file,
    image_names,
    staging,
    write_output,
)
from compressai_hqa.codec.reading import read_file
from compressai_hqa.codec.sources import expand_sources, iter_images
from compressai_hqa.commands import (
    DataError,
    UsageError,
    attach_mmse_decoders,
    load_state_dict,
    progress_bar,
    resolve_device,
)
from compressai_hqa.decoding import Decoding
from compressai_hqa.models import HQA

__all__ = ["compress", "decompress", "info", "load_model", "to_uint8"]

PROG = "compressai-hqa"
# Bytes per pixel and channel while an image file is decoded and converted:
# PIL's 8-bit pixels, a uint8 tensor, float32 pixels, float32 resized pixels.
_LOAD_BYTES = 1 + 1 + 4 + 4


def _note(text: str) -> None:
    print(f"{PROG}: {text}", file=sys.stderr)


def _deprecations(args: argparse.Namespace) -> None:
    if args.batch_size is not None:
        _note(
            "note: --batch-size is deprecated and has no effect: images are coded "
            "in fixed chunks whatever the batch (--max-memory bounds the memory)"
        )


# ----------------------------------------------------------------- compress
def compress(args: argparse.Namespace) -> None:
    """``compressai-hqa compress``."""
    _deprecations(args)
    if args.idx_size < 0:
        raise UsageError("--idx-size must be >= 0")
    check_output_file(args.output, args.force)
    sources = expand_sources(args.sources, args.max_memory)
    model = load_model(args.model, args.weights, args.layer, args.device)
    try:
        payload_coder(model, args.prior, args.context_prior)
    except ValueError as err:
        raise UsageError(str(err)) from None
    check = _image_check(model, args)
    count = sum(s.count for s in sources)
    resize = model.config.image_size if args.resize else None
    with progress_bar(count, args.quiet, "compress") as bar:
        named = iter_images(sources, args.color_mode, args.idx_size, check, resize)
        images = _warn_size(model, named)
        try:
            data = compress_images(
                model,
                images,
                args.prior,
                bar,
                max_memory=args.max_memory,
                context_prior=args.context_prior,
            )
        except MemoryLimitError:
            raise
        except (ValueError, TypeError) as err:
            raise DataError(str(err)) from None
    write_output(args.output, data, args.force)
    if not args.quiet:
        header, _ = fmt.unpack(data)
        where = "stdout" if args.output == "-" else args.output
        _note(
            f"{_images(header.count)} -> {where}: {len(data):,} bytes, "
            f"{8 * len(data) / header.count:,.1f} bits per image"
        )


def _image_check(model: HQA, args: argparse.Namespace) -> Any:
    """What every image must pass before its pixels are decoded: the model's
    channels and the memory budget."""
    channels = model.config.in_channels

    def check(name: str, stored: tuple, coded: tuple, image_channels: int) -> None:
        if image_channels != channels:
            mode = "L" if channels == 1 else "RGB"
            raise DataError(
                f"{name}: a {image_channels}-channel image, {model_name(model)} "
                f"takes {channels}-channel images; pass --color-mode {mode} to "
                "convert"
            )
        loading = _LOAD_BYTES * image_channels * stored[0] * stored[1]
        try:
            if loading > args.max_memory:
                raise MemoryLimitError(
                    f"reading a {stored[0]}x{stored[1]} image needs about "
                    f"{format_bytes(loading)}, more than the "
                    f"{format_bytes(args.max_memory)} allowed; raise the limit "
                    "with --max-memory"
                )
            check_budget(model, [coded], "encode", args.max_memory)
        except MemoryLimitError as err:
            raise DataError(f"{name}: {err}") from None

    return check


def _warn_size(model: HQA, named: Iterator[tuple[str, Tensor]]) -> Iterator[Tensor]:
    """The images, with one warning for the first whose size is not the model's
    training size."""
    size = model.config.image_size
    warned = False
    for name, image in named:
        if not warned and tuple(image.shape[-2:]) != (size, size):
            warned = True
            h, w = image.shape[-2:]
            _note(
                f"warning: {name} is {h}x{w}, not the {size}x{size} "
                f"{model_name(model)} was trained on; images are coded at their "
                f"own size (MNIST's 28x28 digits then decode as other digits): "
                f"pass --resize to resize them to {size}x{size}"
            )
        yield image


# --------------------------------------------------------------- decompress
def decompress(args: argparse.Namespace) -> None:
    """``compressai-hqa decompress``."""
    _deprecations(args)
    try:
        decoding = Decoding(
            args.decode, args.temperature, args.num_samples, seed=args.seed
        )
    except ValueError as err:
        raise UsageError(f"--{err}") from None
    with _open_input(args.input) as stream:
        data = read_file(stream)
    header, _ = fmt.unpack(data)  # validates the container before loading models
    if args.output == "-" and header.count != 1:
        raise UsageError(
            f"the file holds {header.count} images: write them to a folder (-o DIR)"
        )
    names = image_names(header.count)
    out_dir = None if args.output == "-" else Path(args.output)
    if out_dir is not None:
        check_output_dir(out_dir, names, args.force)
    model = load_model(
        header.model,
        args.weights,
        header.layer,
        args.device,
        from_file=True,
        check_name=not args.force,
    )
    if decoding.method.direct:
        attach_mmse_decoders(
            model, args.mmse, shipped=args.weights is None, mode=args.decode
        )
    check_decode_memory(
        model, header, decoding.mode, args.max_memory, args.context_prior
    )
    # the whole file validated
    header, codes = read_codes(data, model, args.force, args.context_prior)
    images = decode_images(model, header, codes, decoding, args.max_memory)
    if out_dir is None:
        buffer = io.BytesIO()
        _png(next(images)).save(buffer, format="PNG")
        write_output("-", buffer.getvalue(), args.force)
    else:
        with (
            progress_bar(header.count, args.quiet, "decompress") as bar,
            staging(out_dir, args.force) as tmp,
        ):
            for name, image in zip(names, images, strict=True):
                _png(image).save(tmp / name, format="PNG")
                bar.update(1)
    if not args.quiet:
        where = "stdout" if out_dir is None else f"{out_dir}/"
        _note(f"{_images(header.count)} -> {where}")


def _png(image: Tensor) -> Any:
    """The PNG of an image in [0, 1]: ``round(clamp(x, 0, 1) * 255)`` as 8 bits."""
    from PIL import Image

    pixels = to_uint8(image)
    if pixels.shape[0] == 1:
        return Image.fromarray(pixels[0].numpy(), mode="L")
    return Image.fromarray(pixels.permute(1, 2, 0).contiguous().numpy(), mode="RGB")


def to_uint8(image: Tensor) -> Tensor:
    """8-bit values of images in [0, 1] as written to PNG (as eval_model's PSNR)."""
    return (image.float().clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)


# --------------------------------------------------------------------- info
def info(args: argparse.Namespace) -> None:
    """``compressai-hqa info``."""
    with _open_input(args.input) as stream:
        data = read_file(stream)
    header, payload = fmt.unpack(data)
    sizes = list(dict.fromkeys(header.sizes))  # distinct, in file order
    described: dict[str, Any] = {
        "version": header.version,
        "model": header.model,
        "fingerprint": header.fingerprint.hex(),
        "layer": header.layer,
        "prior": header.prior,
        "codebook_size": header.codebook_size,
        "downsampling": header.factor,
        "images": header.count,
        "sizes": [f"{s.height}x{s.width}x{s.channels}" for s in sizes],
        "codes": header.total_codes,
        "file_bytes": len(data),
        "header_bytes": len(data) - len(payload),
        "payload_bytes": len(payload),
        "bytes_per_image": len(data) / header.count,
        "payload_bits_per_image": 8 * len(payload) / header.count,
        "uniform_bits_per_image": header.ideal_bits / header.count,
    }
    if args.json:
        write_output("-", (json.dumps(described, indent=2) + "\n").encode(), False)
        return
    shown = described["sizes"][:5] + (["..."] if len(sizes) > 5 else [])
    described["sizes"] = ", ".join(shown) + (" (all)" if len(sizes) == 1 else "")
    lines = []
    for key, value in described.items():
        text = f"{value:.2f}" if isinstance(value, float) else value
        lines.append(f"{key.replace('_', ' ')}: {text}\n")
    write_output("-", "".join(lines).encode(), False)


# ------------------------------------------------------------------ helpers
def load_model(
    name: str | None,
    weights: str | None,
    layer: int | None,
    device: str,
    from_file: bool = False,
    check_name: bool = True,
) -> HQA:
    """The HQA stack named ``name`` (or of ``weights``), truncated at ``layer``.

    With ``check_name``, weights of another architecture than ``name`` are an
    error (``decompress --force`` relies on the file's own checks instead).
    Anything printed while weights load (torch's download message) goes to
    stderr.

    Raises:
        UsageError: an unknown model, layer or device, weights that are missing
            or of another model.
        DataError: unreadable weights.
    """
    target = resolve_device(device)
    with redirect_stdout(sys.stderr):
        model = _build_model(name, weights, from_file, check_name)
    layer = model.num_layers if layer is None else layer
    if not 1 <= layer <= model.num_layers:
        raise UsageError(
            f"layer {layer} is not in [1, {model.num_layers}] for these weights"
        )
    return model.truncate(layer).eval().to(target)


def _build_model(
    name: str | None, weights: str | None, from_file: bool, check_name: bool
) -> HQA:
    from compressai_hqa.families import FAMILIES, get_config
    from compressai_hqa.models import check_compatible

    if name is not None and not name.startswith("hqa-"):
        raise UsageError(f"unknown model {name!r} (expected hqa-<config>)")
    config = None if name is None else name.removeprefix("hqa-")
    if weights is None and config is not None and config not in FAMILIES:
        raise UsageError(f"no weights are shipped for {name}: pass --weights")
    state_dict = load_state_dict(weights, config)
    try:
        model = HQA.from_state_dict(state_dict)
    except ValueError as err:
        raise DataError(f"{weights}: {err}") from None
    if config is not None and check_name:
        if config in FAMILIES:
            try:
                check_compatible(model.config, get_config(config), model.num_layers)
            except ValueError as err:
                raise UsageError(f"{name}: {err}") from None
        elif model.config.name != config:
            what = "the file was compressed with" if from_file else "--model is"
            raise UsageError(f"{what} {name}, the weights are {model_name(model)}")
    return model


@contextmanager
def _open_input(spec: str) -> Iterator[BinaryIO]:
    """stdin for ``-``, else the file, opened for reading (not read)."""
    if spec == "-":
        yield sys.stdin.buffer
        return
    try:
        stream = open(spec, "rb")
    except FileNotFoundError:
        raise UsageError(f"no such file: {spec}") from None
    except OSError as err:
        raise UsageError(f"cannot read {spec}: {err.strerror}") from None
    with stream:
        yield stream


def _images(count: int) -> str:
    return f"{count:,} image{'' if count == 1 else 's'}"
