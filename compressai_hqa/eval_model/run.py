"""What ``python -m compressai_hqa.eval_model`` runs once its arguments are parsed.

:func:`run` loads the images, the models (CompressAI's zoo at each quality, or
checkpoints), the perception metrics, evaluates every model with
:func:`~compressai_hqa.eval_model.evaluate.evaluate` and returns CompressAI's
JSON (also written to ``-d``/``-o``). Problems with the command line or its
inputs raise :class:`~compressai_hqa.commands.UsageError` (unreadable images or
checkpoints :class:`~compressai_hqa.commands.DataError`), printed in one line.
"""

from __future__ import annotations

import argparse
import json
import sys

from collections import defaultdict
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from compressai_hqa.commands import (
    DataError,
    UsageError,
    attach_mmse_decoders,
    cuda_or_cpu,
)
from compressai_hqa.decoding import Decoding
from compressai_hqa.eval_model.data import EvalImages, load_eval_images
from compressai_hqa.eval_model.evaluate import MSSSIM_MIN_SIDE, EvalOptions, evaluate

__all__ = [
    "MNIST_BATCH_SIZE",
    "UsageError",
    "load_checkpoint",
    "load_pretrained",
    "run",
]

#: Default ``--batch-size`` for MNIST (folders go one image at a time).
MNIST_BATCH_SIZE = 256


def load_pretrained(model: str, metric: str, quality: int) -> nn.Module:
    """CompressAI's zoo model ``model`` at ``quality``, with trained weights."""
    from compressai.zoo import image_models

    return image_models[model](
        quality=quality, metric=metric, pretrained=True, progress=False
    ).eval()


def load_checkpoint(arch: str, no_update: bool, checkpoint_path: str) -> nn.Module:
    """A model of architecture ``arch`` from a checkpoint, as CompressAI's
    ``eval_model`` loads it (the state dict under CompressAI's keys)."""
    from compressai.zoo.image import model_architectures

    from compressai_hqa.zoo import load_weights

    state_dict = load_weights(checkpoint_path, progress=False)
    net = model_architectures[arch].from_state_dict(state_dict)
    if not no_update:
        net.update(force=True)
    return net.eval()


def _settings(
    args: argparse.Namespace, num_images: int, options: EvalOptions, device: Any
) -> dict[str, Any]:
    """The evaluation's settings, as stored beside its results."""
    return {
        "dataset": args.dataset,
        "num_images": num_images,
        "color_mode": args.color_mode,
        "decode": args.decode,
        "seed": args.seed,
        "num_samples": args.num_samples if args.decode == "average" else None,
        "sample_top": args.sample_top,
        "temperature": args.temperature,
        "batch_size": options.batch_size,
        "prior": args.prior,
        "device": str(device),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    import compressai

    _check_args(args)
    images = _load_images(args)
    device = cuda_or_cpu(args.cuda)
    progress = args.verbose or sys.stderr.isatty()
    options = EvalOptions(
        entropy_estimation=args.entropy_estimation,
        decoding=_decoding(args),
        sample_top=args.sample_top,
        batch_size=args.batch_size or (MNIST_BATCH_SIZE if images.is_mnist else 1),
        prior=args.prior,
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
        "settings": _settings(args, len(images), options, device),
    }
    if args.output_directory:
        name = args.output_file or f"{args.architecture}-{description}"
        path = (Path(args.output_directory) / name).with_suffix(".json")
        path.write_text(json.dumps(output, indent=2))
    print(json.dumps(output, indent=2))
    return output


def _check_args(args: argparse.Namespace) -> None:
    if args.architecture.endswith("-vbr"):
        raise UsageError(
            "variable-rate models are not supported here; use "
            "python -m compressai.utils.eval_model"
        )
    if args.per_image and not args.output_directory:
        raise UsageError("--per-image needs an output directory (-d)")
    for name in ("num_images", "rfid_n", "batch_size", "num_samples"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    if args.decode != "argmin" and not args.architecture.startswith("hqa"):
        raise UsageError(f"--decode {args.decode} needs an HQA architecture")
    if args.mmse is not None and args.decode != "mmse":
        raise UsageError("--mmse is for --decode mmse")
    if args.sample_top and not args.architecture.startswith("hqa"):
        raise UsageError("--sample-top needs an HQA architecture")
    if args.prior != "uniform" and (
        not args.architecture.startswith("hqa")
        or args.entropy_estimation
        or args.sample_top
    ):
        raise UsageError(
            f"--prior {args.prior} needs an HQA architecture, real bitstreams and "
            "no --sample-top"
        )
    _decoding(args)


def _decoding(args: argparse.Namespace) -> Decoding:
    """The command line's decoding, or UsageError."""
    try:
        return Decoding(args.decode, args.temperature, args.num_samples, seed=args.seed)
    except ValueError as err:
        raise UsageError(f"--{err}") from None


def _load_images(args: argparse.Namespace) -> EvalImages:
    try:
        images = load_eval_images(args.dataset, args.color_mode)
    except FileNotFoundError as err:
        raise UsageError(str(err)) from None
    except ValueError as err:  # no images, or an unreadable one
        raise DataError(str(err)) from None
    if args.num_images is not None:
        images = images.subset(args.num_images)
    if args.classifier and not images.is_mnist:
        raise UsageError("--classifier needs the MNIST dataset (mnist:<root>)")
    return images


def _rfid_setup(
    args: argparse.Namespace, images: EvalImages, device: torch.device, progress: bool
) -> tuple[int, nn.Module | None, Any]:
    """(n, Inception, features of the first n originals), or (0, None, None)."""
    if not args.rfid:
        return 0, None, None
    from compressai_hqa.metrics.inception import (
        FIDUnavailableError,
        check_fid_available,
        load_inception,
    )

    count = len(images) if args.rfid_n is None else min(args.rfid_n, len(images))
    try:
        check_fid_available()
        if count < 2:
            raise UsageError("rFID needs at least 2 images")
        inception = load_inception(device)
    except FIDUnavailableError as err:
        raise UsageError(str(err)) from None
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
            name = f"{args.architecture}-{args.metric}-{run}-{description}"
        else:
            model = load_checkpoint(args.architecture, args.no_update, run)
            name = f"{_checkpoint_name(run)}-{description}"
    except (PretrainedUnavailableError, FileNotFoundError) as err:
        raise UsageError(str(err)) from None
    except ValueError as err:  # an unreadable checkpoint
        raise DataError(str(err)) from None
    if Decoding.of(args.decode).method.direct:
        shipped = args.source == "pretrained"
        attach_mmse_decoders(model, args.mmse, shipped, args.decode)
    return model, name


def _check_model(model: nn.Module, images: EvalImages, classifier: bool) -> None:
    from compressai_hqa.models import HQA

    is_hqa = isinstance(model, HQA)
    expected = model.config.in_channels if is_hqa else 3
    if images.channels != expected:
        mode = "L" if expected == 1 else "RGB"
        raise UsageError(
            f"the model takes {expected}-channel images but {images.name} has "
            f"{images.channels}-channel images (pass --color-mode {mode} to convert)"
        )
    if classifier and not (is_hqa and expected == 1):
        raise UsageError("--classifier needs a single-channel HQA model")


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
