"""``python -m compressai_hqa.figures``: the HQA paper's qualitative figures.

Subcommands (each writes one PNG, ``--output``):

* ``layers``: the same images reconstructed at every layer, with bits per image
  (paper Table 2);
* ``interpolate``: decodes of a linear interpolation of top-layer ``z_e`` between
  two images, one row per layer (Tables 4 and 8);
* ``codes``: the decode of every code of the top codebook (Figure 4); when the top
  code grid of an image is larger than 1x1, each cell decodes the grid filled
  with one code;
* ``diversity``: stochastic decodes of the same codes and their average
  (Figure 6 / Table 6);
* ``rate-perception``: bits per image vs rFID, class-error and MSE from
  ``python -m compressai_hqa.eval_model`` JSON files.

``layers``, ``interpolate`` and ``codes`` decode by ``--decode`` (any of
:data:`~compressai_hqa.decoding.DECODE_MODES`, ``--seed`` for the stochastic
ones); ``diversity --with-mmse`` adds a column of MMSE decodes. ``mmse`` uses the
shipped MMSE decoders with ``--pretrained``, ``--mmse PATH`` with a checkpoint.

The model is ``--checkpoint PATH`` (an HQA state dict or training checkpoint) or
``--pretrained [--config mnist]``; the images ``--dataset mnist:<root>`` or a
folder of equally sized images, by default the 100 MNIST test digits embedded in
the package. Grid geometry: cells of ``H * --scale`` pixels, ``--padding`` pixels
apart, a :data:`LABEL_WIDTH`-pixel margin for row labels and a
:data:`HEADER_HEIGHT`-pixel margin for column labels (``diversity``).

Example::

    python -m compressai_hqa.figures layers --checkpoint hqa-mnist.pth -o layers.png
"""

from __future__ import annotations

import argparse
import sys

from collections.abc import Sequence

from torch import Tensor

from compressai_hqa.commands import (
    CommandParser,
    UsageError,
    cuda_or_cpu,
    load_state_dict,
    run_command,
)
from compressai_hqa.datasets import COLOR_MODES
from compressai_hqa.decoding import DECODE_MODES, Decoding
from compressai_hqa.figures.grid import GridLayout
from compressai_hqa.models import HQA

__all__ = ["HEADER_HEIGHT", "LABEL_WIDTH", "PROG", "main", "setup_args"]

PROG = "python -m compressai_hqa.figures"

#: Left margin (pixels) of figures with row labels.
LABEL_WIDTH = 72
#: Top margin (pixels) of figures with column labels.
HEADER_HEIGHT = 14


def _int_list(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v]


def _add_image_choice(parser: argparse.ArgumentParser, num: int) -> None:
    """``--indices`` or the first ``--num`` images."""
    parser.add_argument(
        "--indices", type=_int_list, default=None, help="images, e.g. 0,1,2"
    )
    parser.add_argument(
        "--num", type=int, default=num, help=f"first N images (default: {num})"
    )


def setup_args() -> argparse.ArgumentParser:
    model = argparse.ArgumentParser(add_help=False)
    group = model.add_argument_group("model")
    source = group.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="HQA state dict or training checkpoint")
    source.add_argument(
        "--pretrained", action="store_true", help="the shipped weights of --config"
    )
    group.add_argument(
        "--config", default="mnist", help="config of --pretrained (default: mnist)"
    )
    group.add_argument(
        "--mmse",
        default=None,
        metavar="PATH",
        help="MMSE decoders of --checkpoint for --decode mmse (from python -m "
        "compressai_hqa.training.mmse; --pretrained brings its own)",
    )
    group.add_argument("--cuda", action="store_true", help="run on CUDA")
    decode = argparse.ArgumentParser(add_help=False)
    group = decode.add_argument_group("decoding")
    group.add_argument(
        "--decode",
        choices=DECODE_MODES,
        default="argmin",
        help="decoding mode (compressai_hqa.decoding; default: %(default)s)",
    )
    group.add_argument(
        "--seed", type=int, default=0, help="seed of stochastic decoding (0)"
    )
    images = argparse.ArgumentParser(add_help=False)
    group = images.add_argument_group("images")
    group.add_argument(
        "--dataset",
        default=None,
        help="a folder of equally sized images, or FAMILY:ROOT read by a model "
        "family's transform (mnist:<root>: the test split; default: the 100 MNIST "
        "test digits embedded in the package)",
    )
    group.add_argument(
        "--color-mode",
        choices=COLOR_MODES,
        default=None,
        help="convert the images to PIL mode L or RGB",
    )
    layout = argparse.ArgumentParser(add_help=False)
    group = layout.add_argument_group("output")
    group.add_argument("-o", "--output", required=True, help="PNG file to write")
    group.add_argument(
        "--scale", type=int, default=2, help="pixel upscaling (default: 2)"
    )
    group.add_argument(
        "--padding", type=int, default=2, help="pixels between cells (default: 2)"
    )

    parser = CommandParser(
        prog=PROG, description="Figures of the HQA paper from an HQA stack."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser(
        "layers",
        parents=[model, decode, images, layout],
        help="reconstructions at every layer (Table 2)",
    )
    _add_image_choice(p, num=8)
    p.add_argument("--layers", type=_int_list, default=None, help="e.g. 1,3,5")

    p = sub.add_parser(
        "interpolate",
        parents=[model, decode, images, layout],
        help="interpolation of top-layer z_e (Tables 4, 8)",
    )
    p.add_argument(
        "--pair", type=int, nargs=2, default=(0, 1), help="the two images (0 1)"
    )
    p.add_argument(
        "--steps", type=int, default=8, help="interpolation points (default: 8)"
    )
    p.add_argument("--layers", type=_int_list, default=None, help="e.g. 3,4,5")

    p = sub.add_parser(
        "codes",
        parents=[model, decode, layout],
        help="decodes of all top codes (Figure 4)",
    )
    p.add_argument("--layer", type=int, default=None, help="default: top layer")
    p.add_argument("--size", type=int, default=None, help="image side (config's)")
    p.add_argument("--columns", type=int, default=None, help="default: sqrt(K)")

    p = sub.add_parser(
        "diversity",
        parents=[model, images, layout],
        help="stochastic decodes and their mean (Figure 6, Table 6)",
    )
    _add_image_choice(p, num=4)
    p.add_argument("--samples", type=int, default=6, help="samples shown (6)")
    p.add_argument("--average-of", type=int, default=16, help="samples averaged (16)")
    p.add_argument("--layer", type=int, default=None, help="default: top layer")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (0)")
    p.add_argument(
        "--temperature",
        type=float,
        default=1.0,
        help="draws from each posterior's logits divided by this (1, the paper's)",
    )
    p.add_argument(
        "--with-mmse", action="store_true", help="add a column of MMSE decodes"
    )

    p = sub.add_parser(
        "rate-perception",
        help="bits vs rFID, class-error and MSE from eval_model JSON files",
    )
    p.add_argument(
        "-f", "--results-file", nargs="+", required=True, help="eval_model JSONs"
    )
    p.add_argument("-o", "--output", required=True, help="PNG file to write")
    p.add_argument(
        "--figsize",
        type=float,
        nargs=2,
        default=(12.0, 4.0),
        help="inches (default: 12 4)",
    )
    p.add_argument("--dpi", type=int, default=100, help="pixels per inch (100)")
    p.add_argument("--title", default=None, help="figure title")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Writes the figure the arguments ask for.

    Raises:
        SystemExit: an error, printed in one line, with the exit status of
            :mod:`compressai_hqa.commands` (1: usage, 2: bad data, 130).
    """
    args = setup_args().parse_args(list(sys.argv[1:] if argv is None else argv))
    run_command(lambda: _run(args), PROG, usage=(ValueError,))


def _run(args: argparse.Namespace) -> None:
    from compressai_hqa.figures import hqa as figs

    if args.command == "rate-perception":
        from compressai_hqa.figures.rate_perception import rate_perception_plot

        rate_perception_plot(
            args.results_file, args.output, tuple(args.figsize), args.dpi, args.title
        )
        return
    model = _load_model(args)
    if args.command == "layers":
        images = _images(args, model, args.indices or list(range(args.num)))
        image = figs.layers_figure(
            model, images, _layout(args, LABEL_WIDTH), args.layers, _decoding(args)
        )
    elif args.command == "interpolate":
        images = _images(args, model, list(args.pair))
        image = figs.interpolation_figure(
            model,
            images[0],
            images[1],
            _layout(args, LABEL_WIDTH),
            steps=args.steps,
            layers=args.layers,
            decoding=_decoding(args),
        )
    elif args.command == "codes":
        image = figs.codes_figure(
            model, _layout(args), args.layer, args.size, args.columns, _decoding(args)
        )
    else:
        images = _images(args, model, args.indices or list(range(args.num)))
        image = figs.diversity_figure(
            model,
            images,
            _layout(args, LABEL_WIDTH, HEADER_HEIGHT),
            samples=args.samples,
            average_of=args.average_of,
            layer=args.layer,
            decoding=Decoding("sample", args.temperature, seed=args.seed),
            mmse=args.with_mmse,
        )
    image.save(args.output)
    print(f"wrote {args.output} ({image.width}x{image.height})", file=sys.stderr)


def _decoding(args: argparse.Namespace) -> Decoding:
    return Decoding(args.decode, seed=args.seed)


def _layout(
    args: argparse.Namespace, label_width: int = 0, header_height: int = 0
) -> GridLayout:
    return GridLayout(args.scale, args.padding, label_width, header_height)


def _load_model(args: argparse.Namespace) -> HQA:
    from compressai_hqa.families import FAMILIES
    from compressai_hqa.zoo.mmse import attach_mmse

    if not args.checkpoint and args.config not in FAMILIES:
        raise UsageError(f"unknown config {args.config!r} (one of {list(FAMILIES)})")
    state_dict = load_state_dict(args.checkpoint, args.config)
    model = HQA.from_state_dict(state_dict)
    attach_mmse(model, args.mmse, shipped=not args.checkpoint)
    return model.to(cuda_or_cpu(args.cuda)).eval()


def _images(args: argparse.Namespace, model: HQA, indices: list[int]) -> Tensor:
    if args.dataset is None:
        from compressai_hqa.datasets import sample_digits

        images = sample_digits().images
        if args.color_mode == "RGB":
            images = images.repeat(1, 3, 1, 1)
        name = "the embedded MNIST digits"
    else:
        from compressai_hqa.eval_model.data import load_eval_images

        data = load_eval_images(args.dataset, args.color_mode)
        if not isinstance(data.images, Tensor):
            raise ValueError(f"the images of {args.dataset} must all have one size")
        images, name = data.images, args.dataset
    if any(not 0 <= i < len(images) for i in indices):
        raise ValueError(f"image indices must be in [0, {len(images)}), got {indices}")
    channels = model.config.in_channels
    if images.shape[1] != channels:
        raise ValueError(
            f"the model takes {channels}-channel images but {name} are "
            f"{images.shape[1]}-channel (pass --dataset or --color-mode)"
        )
    return images[indices].to(model.device)


if __name__ == "__main__":
    main()
