"""``python -m compressai_hqa.eval_model``: CompressAI's eval_model, for HQA too.

The command line is CompressAI's (``pretrained -q ...`` or ``checkpoint -p ...``,
``-a``, ``-m``, ``-c``, ``--cuda``, ``--half``, ``--entropy-estimation``, ``-d``,
``-o``, ``--per-image``, ``-v``) and so is the JSON it writes (``name``,
``description`` and ``results`` with one entry per quality or checkpoint for
``psnr-rgb``, ``ms-ssim-rgb``, ``bpp``, ``encoding_time``, ``decoding_time``), so
``python -m compressai.utils.plot`` plots HQA beside CompressAI's codecs. Added:

* the dataset may be ``mnist:<root>`` (the 10k test split, 32x32, 1 channel) or a
  folder; images keep their own channels (``--color-mode`` converts);
* ``mse`` (on [0, 1] floats) and ``bits`` (per image) are always reported;
  ``ms-ssim-rgb`` is null, with a note, for images too small for MS-SSIM;
* ``--rfid`` adds ``rfid`` and ``rfid-n``, ``--classifier`` adds ``class-error``;
* ``--decode {argmin,sample,average}``, ``--seed`` and ``--num-samples`` for HQA's
  stochastic decoding, ``--sample-top`` to draw the top code too (Algorithm 3 in
  full); ``--batch-size`` and ``--num-images``.

Example::

    python -m compressai_hqa.eval_model checkpoint mnist:../shared/data -a hqa \\
        -p hqa-mnist.pth.tar --rfid --classifier -d results -o hqa-mnist.json
"""

from __future__ import annotations

import argparse
import json
import sys

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from compressai_hqa.eval_model.data import COLOR_MODES, EvalImages, load_eval_images
from compressai_hqa.eval_model.evaluate import (
    DECODE_MODES,
    MSSSIM_MIN_SIDE,
    EvalOptions,
    evaluate,
)

__all__ = ["load_checkpoint", "load_pretrained", "main", "setup_args"]

_MNIST_BATCH_SIZE = 256


def setup_args() -> argparse.ArgumentParser:
    """CompressAI's eval_model parser with the HQA options added to both modes."""
    parser = _compressai_parser()
    parser.prog = "python -m compressai_hqa.eval_model"
    parser.description = (
        "Evaluate a model on an image dataset (CompressAI's eval_model, with HQA, "
        "MNIST, rFID and class-error)."
    )
    subparsers = next(
        a for a in parser._actions if isinstance(a, argparse._SubParsersAction)
    )
    for name in ("pretrained", "checkpoint"):
        _add_options(subparsers.choices[name])
    return parser


def _add_options(parser: argparse.ArgumentParser) -> None:
    for action in parser._actions:
        if action.dest == "dataset":
            action.help = (
                "dataset: a folder of images (searched recursively) or "
                "mnist:<root> for the 10k MNIST test split (<root>/MNIST/raw/)"
            )
    group = parser.add_argument_group("compressai_hqa options")
    group.add_argument(
        "--color-mode",
        choices=COLOR_MODES,
        default=None,
        help="convert the images to PIL mode L (1 channel) or RGB; by default "
        "images keep their channels and must match the model's",
    )
    group.add_argument(
        "--num-images",
        type=int,
        default=None,
        metavar="N",
        help="evaluate the first N images only (default: all)",
    )
    group.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help=f"images per batch (default: {_MNIST_BATCH_SIZE} for MNIST, 1 for "
        "folders; images of different sizes always go one by one)",
    )
    group.add_argument(
        "--decode",
        choices=DECODE_MODES,
        default="argmin",
        help="HQA decoding: deterministic argmin (default), one stochastic "
        "sample, or the average of --num-samples samples",
    )
    group.add_argument(
        "--seed", type=int, default=0, help="seed of stochastic decoding (default: 0)"
    )
    group.add_argument(
        "--num-samples",
        type=int,
        default=8,
        help="decodes averaged by --decode average (default: %(default)s)",
    )
    group.add_argument(
        "--sample-top",
        action="store_true",
        help="HQA: also draw the top code from its posterior (the paper's "
        "Algorithm 3 in full); the rate is that of the transmitted argmin code",
    )
    group.add_argument(
        "--rfid",
        action="store_true",
        help="add rfid: FID between reconstructions and originals (pytorch-fid "
        "Inception; needs the [fid] extra, no download)",
    )
    group.add_argument(
        "--rfid-n",
        type=int,
        default=None,
        metavar="N",
        help="rFID on the first N images (default: all; FID is biased at small N, "
        "compare only equal N)",
    )
    group.add_argument(
        "--classifier",
        action="store_true",
        help="add class-error: error of the shipped MNIST classifier on the "
        "reconstructions (MNIST only)",
    )


def load_pretrained(model: str, metric: str, quality: int) -> nn.Module:
    """CompressAI's zoo model ``model`` at ``quality``, with trained weights."""
    from compressai.zoo import image_models

    return image_models[model](
        quality=quality, metric=metric, pretrained=True, progress=False
    ).eval()


def load_checkpoint(arch: str, no_update: bool, checkpoint_path: str) -> nn.Module:
    """A model of architecture ``arch`` from a checkpoint (CompressAI's keys)."""
    from compressai.zoo.image import model_architectures

    from compressai_hqa.zoo.pretrained import read_checkpoint

    checkpoint = read_checkpoint(checkpoint_path)
    if not isinstance(checkpoint, dict):
        raise ValueError(f"{checkpoint_path} does not hold a state dict")
    state_dict = checkpoint
    for key in ("network", "state_dict", "model_state_dict"):
        if key in checkpoint:
            state_dict = checkpoint[key]
    net = model_architectures[arch].from_state_dict(state_dict)
    if not no_update:
        net.update(force=True)
    return net.eval()


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Runs the evaluation; returns (and prints) CompressAI's JSON."""
    parser = setup_args()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.source not in ("checkpoint", "pretrained"):
        print("Error: missing 'checkpoint' or 'pretrained' source.", file=sys.stderr)
        parser.print_help()
        raise SystemExit(1)
    try:
        return _run(args)
    except _UsageError as err:
        raise SystemExit(f"error: {err}") from None


class _UsageError(Exception):
    """A problem with the command line or its inputs (printed in one line)."""


def _run(args: argparse.Namespace) -> dict[str, Any]:
    import compressai

    _check_args(args)
    images = _load_images(args)
    device = _device(args.cuda)
    progress = args.verbose or sys.stderr.isatty()
    options = EvalOptions(
        entropy_estimation=args.entropy_estimation,
        decode=args.decode,
        seed=args.seed,
        num_samples=args.num_samples,
        sample_top=args.sample_top,
        batch_size=args.batch_size or (_MNIST_BATCH_SIZE if images.is_mnist else 1),
        half=args.half,
        progress=progress,
    )
    rfid_n, inception, reference = _rfid_setup(args, images, device, progress)
    classifier = None
    if args.classifier:
        from compressai_hqa.metrics.classifier import load_classifier

        classifier = load_classifier(device)

    compressai.set_entropy_coder(args.entropy_coder)
    description = (
        "entropy-estimation" if args.entropy_estimation else args.entropy_coder
    )
    if args.output_directory:
        Path(args.output_directory).mkdir(parents=True, exist_ok=True)
    if args.source == "pretrained":
        runs: list[Any] = sorted(int(q) for q in args.qualities.split(",") if q)
    else:
        runs = list(args.checkpoint_paths)

    results: dict[str, list[Any]] = defaultdict(list)
    for run in runs:
        model, trained_net = _load_run(args, run, description)
        _check_model(model, images, classifier is not None)
        print(f"Using trained model {trained_net}", file=sys.stderr)
        model = model.to(device)
        result = evaluate(model, images, options, keep=rfid_n, classifier=classifier)
        for key, value in result.metrics.items():
            results[key].append(value)
        if inception is not None:
            from compressai_hqa.eval_model.rfid import rfid

            results["rfid"].append(
                rfid(result.reconstructions, reference, inception, progress)
            )
            results["rfid-n"].append(rfid_n)
        if result.predictions is not None:
            wrong = (result.predictions != images.labels).double().mean().item()
            results["class-error"].append(wrong)
        if args.per_image:
            _write_per_image(args, images, result.per_image, trained_net, description)

    output: dict[str, Any] = {
        "name": f"{args.architecture}-{args.metric}",
        "description": f"Inference ({description.replace('-', ' ')})",
        "results": dict(results),
        "notes": _notes(images),
        "settings": {
            "dataset": args.dataset,
            "num_images": len(images),
            "color_mode": args.color_mode,
            "decode": args.decode,
            "seed": args.seed,
            "num_samples": args.num_samples if args.decode == "average" else None,
            "sample_top": args.sample_top,
            "batch_size": options.batch_size,
            "device": str(device),
        },
    }
    if args.output_directory:
        name = args.output_file or f"{args.architecture}-{description}"
        path = (Path(args.output_directory) / name).with_suffix(".json")
        path.write_text(json.dumps(output, indent=2))
    print(json.dumps(output, indent=2))
    return output


def _check_args(args: argparse.Namespace) -> None:
    if args.architecture.endswith("-vbr"):
        raise _UsageError(
            "variable-rate models are not supported here; use "
            "python -m compressai.utils.eval_model"
        )
    if args.per_image and not args.output_directory:
        raise _UsageError("--per-image needs an output directory (-d)")
    for name in ("num_images", "rfid_n", "batch_size", "num_samples"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise _UsageError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    if args.decode != "argmin" and not args.architecture.startswith("hqa"):
        raise _UsageError(f"--decode {args.decode} needs an HQA architecture")
    if args.sample_top and not args.architecture.startswith("hqa"):
        raise _UsageError("--sample-top needs an HQA architecture")


def _load_images(args: argparse.Namespace) -> EvalImages:
    try:
        images = load_eval_images(args.dataset, args.color_mode)
    except (FileNotFoundError, ValueError) as err:
        raise _UsageError(str(err)) from None
    if args.num_images is not None:
        images = images.subset(args.num_images)
    if args.classifier and not images.is_mnist:
        raise _UsageError("--classifier needs the MNIST dataset (mnist:<root>)")
    return images


def _device(cuda: bool) -> torch.device:
    if not cuda:
        return torch.device("cpu")
    if not torch.cuda.is_available():
        print("warning: CUDA is not available, running on CPU", file=sys.stderr)
        return torch.device("cpu")
    return torch.device("cuda")


def _rfid_setup(
    args: argparse.Namespace, images: EvalImages, device: torch.device, progress: bool
) -> tuple[int, nn.Module | None, Any]:
    """(n, Inception, features of the first n originals), or (0, None, None)."""
    if not args.rfid:
        return 0, None, None
    from compressai_hqa.metrics.fid import (
        FIDUnavailableError,
        check_fid_available,
        load_inception,
    )

    count = len(images) if args.rfid_n is None else min(args.rfid_n, len(images))
    try:
        check_fid_available()
        if count < 2:
            raise _UsageError("rFID needs at least 2 images")
        inception = load_inception(device)
    except FIDUnavailableError as err:
        raise _UsageError(str(err)) from None
    from compressai_hqa.eval_model.rfid import reference_features

    return count, inception, reference_features(images, count, inception, progress)


def _load_run(
    args: argparse.Namespace, run: Any, description: str
) -> tuple[nn.Module, str]:
    """The model of one quality or checkpoint, and its name for per-image files."""
    from compressai_hqa.zoo import PretrainedUnavailableError

    try:
        if args.source == "pretrained":
            model = load_pretrained(args.architecture, args.metric, run)
            return model, f"{args.architecture}-{args.metric}-{run}-{description}"
        model = load_checkpoint(args.architecture, args.no_update, run)
        return model, f"{_checkpoint_name(run)}-{description}"
    except (PretrainedUnavailableError, FileNotFoundError, ValueError) as err:
        raise _UsageError(str(err)) from None


def _check_model(model: nn.Module, images: EvalImages, classifier: bool) -> None:
    from compressai_hqa.models import HQA

    is_hqa = isinstance(model, HQA)
    expected = model.config.in_channels if is_hqa else 3
    if images.channels != expected:
        mode = "L" if expected == 1 else "RGB"
        raise _UsageError(
            f"the model takes {expected}-channel images but {images.name} has "
            f"{images.channels}-channel images (pass --color-mode {mode} to convert)"
        )
    if classifier and not (is_hqa and expected == 1):
        raise _UsageError("--classifier needs a single-channel HQA model")


def _compressai_parser() -> argparse.ArgumentParser:
    """CompressAI's parser, HQA registered, without CompressAI's import side effects.

    Importing ``compressai.utils.eval_model.__main__`` sets one CPU thread and
    deterministic cuDNN; both are restored.
    """
    import compressai_hqa

    compressai_hqa.register()
    threads = torch.get_num_threads()
    deterministic = torch.backends.cudnn.deterministic
    from compressai.utils.eval_model import __main__ as compressai_eval

    torch.set_num_threads(threads)
    torch.backends.cudnn.deterministic = deterministic
    return compressai_eval.setup_args()


def _checkpoint_name(path: str) -> str:
    name = Path(path).name
    for suffix in (".pth.tar", ".tar.pth", ".pth", ".pt", ".tar"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _notes(images: EvalImages) -> list[str]:
    notes = []
    if images.min_side() <= MSSSIM_MIN_SIDE:
        notes.append(
            "ms-ssim-rgb is null: pytorch-msssim needs images whose short side "
            f"exceeds {MSSSIM_MIN_SIDE} pixels (smallest here: {images.min_side()})"
        )
    if images.channels == 1:
        notes.append(
            "psnr-rgb and ms-ssim-rgb are computed on the single (grayscale) channel"
        )
    return notes


def _write_per_image(
    args: argparse.Namespace,
    images: EvalImages,
    rows: list[dict[str, Any]],
    trained_net: str,
    description: str,
) -> None:
    root = Path(args.output_directory)
    for image_id, row in zip(images.ids, rows, strict=True):
        rel = Path(image_id)
        folder = root / rel.parent
        folder.mkdir(parents=True, exist_ok=True)
        output = {
            "source": rel.name,
            "name": args.architecture,
            "description": f"Inference ({description})",
            "results": row,
        }
        (folder / f"{rel.name}-{trained_net}.json").write_text(
            json.dumps(output, indent=2)
        )


if __name__ == "__main__":
    main()
