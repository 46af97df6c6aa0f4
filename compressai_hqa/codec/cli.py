"""``compressai-hqa``: compress images to ``.hqa`` files, decompress them, inspect them.

Usage::

    compressai-hqa compress IMAGES... -o OUT.hqa [--model hqa-mnist] [--layer 5]
        [--weights PATH] [--prior uniform|learned] [--device cpu|cuda] [--force]
    compressai-hqa decompress OUT.hqa -o DIR [--decode argmin|sample|mmse --seed N]
        [--weights PATH [--mmse PATH]] [--device cpu|cuda] [--force]
    compressai-hqa info OUT.hqa [--json]

Sources are image files, folders (searched recursively), glob patterns, MNIST
IDX files (``*-idx3-ubyte``, gzipped or not) or ``-`` (one image or IDX file
on stdin); ``-o -`` writes to stdout. Exit status: 0 on success, 1 for a usage
error (bad option, missing input, existing output without ``--force``, weights
that do not fit the file), 2 for bad data (a corrupt or newer ``.hqa`` file, an
unreadable image or IDX file), 130 when interrupted; errors are one line on
stderr. Nothing is written unless the whole job succeeds: files go to a
temporary name first and are renamed into place.
"""

from __future__ import annotations

import argparse
import io
import json
import sys

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import torch

from torch import Tensor

from compressai_hqa.codec import format as fmt
from compressai_hqa.codec.api import (
    WeightsMismatchError,
    compress_images,
    decode_images,
    model_name,
    read_codes,
)
from compressai_hqa.codec.outputs import (
    check_output_dir,
    check_output_file,
    image_names,
    staging,
    write_output,
)
from compressai_hqa.codec.sources import (
    DataError,
    UsageError,
    expand_sources,
    iter_images,
    read_input,
)
from compressai_hqa.decoding import Decoding
from compressai_hqa.errors import CorruptStreamError

__all__ = ["EXIT_DATA", "EXIT_USAGE", "main"]

PROG = "compressai-hqa"
EXIT_USAGE = 1
EXIT_DATA = 2


class _Parser(argparse.ArgumentParser):
    """argparse with exit status 1 and a one-line message for usage errors."""

    def error(self, message: str) -> NoReturn:
        _fail(EXIT_USAGE, message + f" (see {PROG} --help)")


def _fail(status: int, message: str) -> NoReturn:
    text = " ".join(str(message).split())
    print(f"{PROG}: error: {text}", file=sys.stderr)
    raise SystemExit(status)


def build_parser() -> argparse.ArgumentParser:
    """The ``compressai-hqa`` argument parser."""
    from compressai_hqa.datasets import COLOR_MODES
    from compressai_hqa.decoding import DECODE_MODES
    from compressai_hqa.models import PRIORS

    parser = _Parser(
        prog=PROG,
        description="Compress images with a Hierarchical Quantized Autoencoder "
        "into .hqa files (one entropy-coded payload for all images).",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    c = sub.add_parser("compress", help="images -> one .hqa file")
    c.add_argument(
        "sources",
        nargs="+",
        metavar="IMAGES",
        help="image files, folders (recursive), glob patterns, MNIST IDX files "
        "(gzipped or not), or - for one image or IDX file on stdin",
    )
    c.add_argument(
        "-o", "--output", required=True, help="the .hqa file, or - for stdout"
    )
    c.add_argument(
        "--model",
        default=None,
        help="model name (hqa-mnist, hqa-celeba64, or hqa-<config> of --weights); "
        "default: the config of --weights, else hqa-mnist",
    )
    c.add_argument(
        "--layer",
        type=int,
        default=None,
        help="the layer whose codes are stored (1 = highest rate; default: the top)",
    )
    c.add_argument(
        "--prior",
        choices=PRIORS,
        default="uniform",
        help="entropy model: uniform (bit-packed, log2 K bits per code; default) "
        "or learned (the weights' static code prior, rANS)",
    )
    c.add_argument(
        "--color-mode",
        choices=COLOR_MODES,
        default=None,
        help="convert images to 1 (L) or 3 (RGB) channels; by default images "
        "keep their channels, which must be the model's",
    )
    c.add_argument(
        "--idx-size",
        type=int,
        default=32,
        metavar="N",
        help="resize square IDX images to N pixels as the MNIST zoo models expect "
        "(bilinear, antialiased; default: %(default)s; 0 keeps them as stored)",
    )
    d = sub.add_parser("decompress", help="one .hqa file -> PNG images")
    d.add_argument("input", metavar="FILE", help="the .hqa file, or - for stdin")
    d.add_argument(
        "-o",
        "--output",
        required=True,
        help="folder for the PNG images (00000.png, ...), or - to write the PNG "
        "of a one-image file to stdout",
    )
    d.add_argument(
        "--decode",
        choices=DECODE_MODES,
        default="argmin",
        help="how lower layers re-quantise (compressai_hqa.decoding; default: "
        "%(default)s, deterministic; sample: a seeded draw from each posterior; "
        "average: the mean of --num-samples such decodes; mmse: the MMSE "
        "decoder of the file's layer, least squared error, deterministic)",
    )
    d.add_argument(
        "--mmse",
        default=None,
        metavar="PATH",
        help="MMSE decoders of --weights for --decode mmse (from python -m "
        "compressai_hqa.training.mmse; the shipped weights bring their own)",
    )
    d.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of stochastic decoding (a CPU generator; default: %(default)s)",
    )
    d.add_argument(
        "--num-samples",
        type=int,
        default=8,
        help="decodes averaged by --decode average (default: %(default)s)",
    )
    d.add_argument(
        "--temperature",
        type=float,
        default=1.0,
        help="stochastic decodes draw from each posterior's logits divided by "
        "this: 1 is the posterior itself (the paper), above 1 flatter, more "
        "varied decodes (default: %(default)s)",
    )
    for p in (c, d):
        p.add_argument(
            "--weights",
            default=None,
            metavar="PATH",
            help="a state dict or training checkpoint instead of the shipped "
            "weights of the model",
        )
        p.add_argument(
            "--device",
            default="cpu",
            help="cpu (default), cuda or cuda:N",
        )
        p.add_argument(
            "--batch-size",
            type=int,
            default=256,
            metavar="N",
            help="images per batch of consecutive same-size images (default: "
            "%(default)s)",
        )
        p.add_argument(
            "-f",
            "--force",
            action="store_true",
            help="overwrite existing outputs"
            + ("; decode with weights other than the file's" if p is d else ""),
        )
        p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    i = sub.add_parser("info", help="describe a .hqa file")
    i.add_argument("input", metavar="FILE", help="the .hqa file, or - for stdin")
    i.add_argument("--json", action="store_true", help="print JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status (0) or raises SystemExit."""
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        if args.command == "compress":
            _compress(args)
        elif args.command == "decompress":
            _decompress(args)
        else:
            _info(args)
    except (UsageError, WeightsMismatchError) as err:
        _fail(EXIT_USAGE, str(err))
    except (DataError, CorruptStreamError) as err:
        _fail(EXIT_DATA, str(err))
    except OSError as err:  # the file system: permissions, a full disk, ...
        _fail(EXIT_USAGE, f"{err.filename or ''}: {err.strerror or err}")
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    return 0


# ----------------------------------------------------------------- compress
def _compress(args: argparse.Namespace) -> None:
    if args.batch_size < 1 or args.idx_size < 0:
        raise UsageError("--batch-size must be >= 1 and --idx-size >= 0")
    check_output_file(args.output, args.force)
    sources = expand_sources(args.sources)
    model = _load_model(args.model, args.weights, args.layer, args.device)
    try:
        model.coder(args.prior)
    except ValueError as err:
        raise UsageError(str(err)) from None
    count = sum(s.count for s in sources)
    with _progress(count, args.quiet, "compress") as bar:
        images = iter_images(sources, args.color_mode, args.idx_size)
        try:
            data = compress_images(model, images, args.prior, args.batch_size, bar)
        except (ValueError, TypeError) as err:
            raise DataError(str(err)) from None
    write_output(args.output, data, args.force)


# --------------------------------------------------------------- decompress
def _decompress(args: argparse.Namespace) -> None:
    if args.batch_size < 1:
        raise UsageError("--batch-size must be >= 1")
    try:
        decoding = Decoding(
            args.decode, args.temperature, args.num_samples, seed=args.seed
        )
    except ValueError as err:
        raise UsageError(f"--{err}") from None
    data = read_input(args.input)
    header, _ = fmt.unpack(data)  # validates the container before loading models
    if args.output == "-" and header.count != 1:
        raise UsageError(
            f"the file holds {header.count} images: write them to a folder (-o DIR)"
        )
    names = image_names(header.count)
    out_dir = None if args.output == "-" else Path(args.output)
    if out_dir is not None:
        check_output_dir(out_dir, names, args.force)
    model = _load_model(
        header.model,
        args.weights,
        header.layer,
        args.device,
        from_file=True,
        check_name=not args.force,
    )
    header, codes = read_codes(data, model, args.force)  # the whole file validated
    if decoding.method.direct:
        from compressai_hqa.zoo.mmse import attach_mmse

        attach_mmse(model, args.mmse, shipped=args.weights is None)
        try:
            model.mmse_decoders(decoding.mode)
        except ValueError as err:
            raise UsageError(f"{err} (here: --mmse PATH)") from None
    images = decode_images(model, header, codes, decoding, args.batch_size)
    if out_dir is None:
        buffer = io.BytesIO()
        _png(next(images)).save(buffer, format="PNG")
        sys.stdout.buffer.write(buffer.getvalue())
        sys.stdout.buffer.flush()
        return
    with (
        _progress(header.count, args.quiet, "decompress") as bar,
        staging(out_dir, args.force) as tmp,
    ):
        for name, image in zip(names, images, strict=True):
            _png(image).save(tmp / name, format="PNG")
            bar.update(1)


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
def _info(args: argparse.Namespace) -> None:
    data = read_input(args.input)
    header, payload = fmt.unpack(data)
    sizes = list(dict.fromkeys(header.sizes))  # distinct, in file order
    info: dict[str, Any] = {
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
        print(json.dumps(info, indent=2))
        return
    shown = info["sizes"][:5] + (["..."] if len(sizes) > 5 else [])
    info["sizes"] = ", ".join(shown) + (" (all)" if len(sizes) == 1 else "")
    for key, value in info.items():
        text = f"{value:.2f}" if isinstance(value, float) else value
        print(f"{key.replace('_', ' ')}: {text}")


# ------------------------------------------------------------------ helpers
def _load_model(
    name: str | None,
    weights: str | None,
    layer: int | None,
    device: str,
    from_file: bool = False,
    check_name: bool = True,
) -> Any:
    """The HQA stack named ``name`` (or of ``weights``), truncated at ``layer``.

    With ``check_name``, weights of another architecture than ``name`` are an
    error (``decompress --force`` relies on the file's own checks instead).
    """
    from compressai_hqa.families import FAMILIES, get_config
    from compressai_hqa.models import HQA, check_compatible
    from compressai_hqa.zoo import PretrainedUnavailableError
    from compressai_hqa.zoo.pretrained import load_weights, pretrained_state_dict

    if name is not None and not name.startswith("hqa-"):
        raise UsageError(f"unknown model {name!r} (expected hqa-<config>)")
    config = None if name is None else name.removeprefix("hqa-")
    try:
        if weights is not None:
            state_dict = load_weights(weights, progress=False)
        elif config in FAMILIES or config is None:
            state_dict = pretrained_state_dict(config or "mnist", progress=False)
        else:
            raise UsageError(f"no weights are shipped for {name}: pass --weights")
    except (FileNotFoundError, PretrainedUnavailableError) as err:
        hint = "; pass --weights" if weights is None else ""
        raise UsageError(f"{err}{hint}") from None
    except ValueError as err:
        raise DataError(str(err)) from None
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
    layer = model.num_layers if layer is None else layer
    if not 1 <= layer <= model.num_layers:
        raise UsageError(
            f"layer {layer} is not in [1, {model.num_layers}] for these weights"
        )
    try:
        target = torch.device(device)
    except RuntimeError:
        raise UsageError(f"unknown device {device!r}") from None
    if target.type == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: CUDA is not available")
    return model.truncate(layer).eval().to(target)


@contextmanager
def _progress(total: int, quiet: bool, what: str) -> Iterator[Any]:
    from tqdm import tqdm

    disable = quiet or not sys.stderr.isatty() or total < 2
    with tqdm(total=total, unit="img", desc=what, disable=disable, leave=False) as bar:
        yield bar
