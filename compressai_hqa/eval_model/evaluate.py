"""The evaluation loop: rate, distortion and perception of a codec on a dataset.

Per image, as CompressAI's ``eval_model`` does: ``psnr-rgb`` and ``ms-ssim-rgb``
on 8-bit values, ``bpp`` from the real bitstream (or from the likelihoods with
entropy estimation), ``encoding_time`` and ``decoding_time``; plus ``mse`` on
[0, 1] floats and ``bits`` per image. Over the set: ``rfid`` (FID between the
reconstructions and the originals of the first n images) and ``class-error`` (the
MNIST classifier's error on the reconstructions).

HQA models get their images unpadded (the model pads them, by replication, to a
multiple of its downsampling factor); other CompressAI models are padded with
zeros to a multiple of 64, as in CompressAI's ``eval_model``.
"""

from __future__ import annotations

import math
import time

from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from torch import Tensor

from compressai_hqa.decoding import Decoding
from compressai_hqa.eval_model.data import EvalImages
from compressai_hqa.models import HQA

__all__ = [
    "MSSSIM_MIN_SIDE",
    "CodedBatch",
    "EvalOptions",
    "EvalResult",
    "code_batch",
    "evaluate",
    "image_metrics",
    "summary",
]

#: The default decoding of an evaluation (a seed for the draws of --sample-top).
_SEEDED_ARGMIN = Decoding(seed=0)

#: pytorch-msssim (5 scales, 11-pixel window) needs a short side above this.
MSSSIM_MIN_SIDE = 160


@dataclass(frozen=True)
class EvalOptions:
    """How to evaluate.

    Args:
        entropy_estimation: rate from the likelihoods instead of real bitstreams
            (encoding and decoding times are then half of the forward pass each).
        decoding: how HQA decodes (a :class:`~compressai_hqa.decoding.Decoding`;
            a mode other than ``"argmin"`` for HQA only). One random stream,
            from its seed (default 0: a CPU generator, the same codes on every
            device), serves the whole evaluation.
        sample_top: HQA only: also draw the top code from q(k | z_e), as the
            paper's Algorithm 3 does (the bitstream, and so the rate, is that of
            the transmitted argmin code).
        batch_size: images per batch (images of different sizes go one by one).
        prior: HQA only: ``"uniform"`` (per-image rANS streams of
            ``HQA.compress``), or ``"learned"`` / ``"context"``: each batch is
            one ``.hqa`` file (:func:`compressai_hqa.codec.compress_images`) and
            every image of it is charged an equal share of the file's bytes.
        half: run the model in float16 (CompressAI's ``--half``).
        progress: show a progress bar.
    """

    entropy_estimation: bool = False
    decoding: Decoding = _SEEDED_ARGMIN
    sample_top: bool = False
    batch_size: int = 1
    prior: str = "uniform"
    half: bool = False
    progress: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "decoding", Decoding.of(self.decoding))
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")


@dataclass
class CodedBatch:
    """One batch through the codec.

    Attributes:
        x_hat: reconstructions (B, C, H, W), float32, not clamped.
        bits: bits of each image's bitstream (ideal bits with entropy estimation).
        encoding_time: seconds to encode the batch.
        decoding_time: seconds to decode the batch.
    """

    x_hat: Tensor
    bits: list[float]
    encoding_time: float
    decoding_time: float


@dataclass
class EvalResult:
    """What :func:`evaluate` returns.

    Attributes:
        metrics: averages over the images (CompressAI's keys, ``mse``, ``bits``;
            ``ms-ssim-rgb`` is None for images too small for MS-SSIM).
        per_image: one dict of metrics per image.
        reconstructions: clamped reconstructions of the first ``keep`` images
            (for rFID), on the CPU.
        predictions: the classifier's labels for the reconstructions, if asked.
    """

    metrics: dict[str, float | None]
    per_image: list[dict[str, float | None]] = field(default_factory=list)
    reconstructions: list[Tensor] = field(default_factory=list)
    predictions: Tensor | None = None


def image_metrics(x: Tensor, x_hat: Tensor) -> dict[str, list[float | None]]:
    """Per-image distortion of reconstructions of images in [0, 1].

    ``psnr-rgb`` and ``ms-ssim-rgb`` are computed as CompressAI does, on values
    rounded to 8 bits, over the images' own channels (one for grayscale; the key
    keeps CompressAI's name). ``ms-ssim-rgb`` is None when the short side is at
    most :data:`MSSSIM_MIN_SIDE`. ``mse`` is on the [0, 1] floats (reconstruction
    clamped to [0, 1]).
    """
    x = x.float()
    x_hat = x_hat.float().clamp(0.0, 1.0)
    mse = (x_hat - x).pow(2).flatten(1).mean(1)
    org = (x * 255).clamp(0, 255).round()
    rec = (x_hat * 255).round()
    mse8 = (org - rec).pow(2).flatten(1).mean(1)
    psnr = 20 * math.log10(255) - 10 * torch.log10(mse8)
    if min(x.shape[-2:]) > MSSSIM_MIN_SIDE:
        from pytorch_msssim import ms_ssim

        msssim: list[float | None] = ms_ssim(
            org, rec, data_range=255, size_average=False
        ).tolist()
    else:
        msssim = [None] * len(x)
    return {"psnr-rgb": psnr.tolist(), "ms-ssim-rgb": msssim, "mse": mse.tolist()}


@torch.no_grad()
def code_batch(model: nn.Module, x: Tensor, options: EvalOptions) -> CodedBatch:
    """Encodes and decodes images ``x`` (B, C, H, W), timed (CUDA synchronised).

    Stochastic decodes draw from ``options.decoding`` (bind its seed with
    :meth:`~compressai_hqa.decoding.Decoding.bound` so that batches continue
    one stream, as :func:`evaluate` does).
    """
    device = x.device
    height, width = x.shape[-2:]
    is_hqa = isinstance(model, HQA)
    decoding = options.decoding.bound()
    stochastic = decoding.mode != "argmin" or options.sample_top
    if stochastic and not is_hqa:
        raise ValueError(f"--decode {decoding.mode} needs an HQA model")

    if options.entropy_estimation:
        start = _now(device)
        if not stochastic:
            out = model(x)
            x_hat, likelihoods = out["x_hat"], list(out["likelihoods"].values())
        else:  # the rate is that of the transmitted argmin code
            top = decoding.replace(mode="sample") if options.sample_top else Decoding()
            indices = model.quantize(x, top)
            x_hat = model.decode(indices, decoding, (height, width))
            likelihoods = [model.likelihoods(indices)]
        elapsed = _now(device) - start
        bits = sum(-torch.log2(p.float()).flatten(1).sum(1) for p in likelihoods)
        return CodedBatch(x_hat.float(), bits.tolist(), elapsed / 2, elapsed / 2)

    if is_hqa and options.prior != "uniform":
        return _code_file(model, x, options, decoding)
    if is_hqa:
        start = _now(device)
        out_enc = model.compress(x)
        mid = _now(device)
        if options.sample_top:  # decodes a drawn top code, not the stream's
            x_hat = model.reconstruct(x, decoding, sample_top=True)
        else:
            strings, shape = out_enc["strings"], out_enc["shape"]
            x_hat = model.decompress(strings, shape, decoding)["x_hat"]
        end = _now(device)
    else:
        from compressai.ops import compute_padding

        pad, unpad = compute_padding(height, width, min_div=2**6)
        start = _now(device)
        out_enc = model.compress(F.pad(x, pad, mode="constant", value=0))
        mid = _now(device)
        x_hat = model.decompress(out_enc["strings"], out_enc["shape"])["x_hat"]
        end = _now(device)
        x_hat = F.pad(x_hat, unpad)
    bits = [
        8.0 * sum(len(strings[i]) for strings in out_enc["strings"])
        for i in range(len(x))
    ]
    return CodedBatch(x_hat.float(), bits, mid - start, end - mid)


def _code_file(
    model: HQA, x: Tensor, options: EvalOptions, decoding: Decoding
) -> CodedBatch:
    """A batch through a ``.hqa`` file of ``options.prior``: the file's real bytes."""
    from compressai_hqa.codec import compress_images, read_codes

    start = _now(x.device)
    data = compress_images(model, x.unbind(0), options.prior)
    mid = _now(x.device)
    _, codes = read_codes(data, model)
    indices = torch.stack(codes).to(x.device)
    x_hat = model.decode(indices, decoding, (x.shape[-2], x.shape[-1]))
    end = _now(x.device)
    bits = [8.0 * len(data) / len(x)] * len(x)
    return CodedBatch(x_hat.float(), bits, mid - start, end - mid)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    images: EvalImages,
    options: EvalOptions,
    keep: int = 0,
    classifier: nn.Module | None = None,
) -> EvalResult:
    """Evaluates ``model`` on ``images``.

    Args:
        model: a CompressAI model (HQA or not) in eval mode, on its device.
        images: the dataset; its channels must be the model's.
        options: see :class:`EvalOptions`.
        keep: keep the reconstructions of the first ``keep`` images (for rFID).
        classifier: if given, classify every reconstruction (MNIST).
    """
    device = next(model.parameters()).device
    options = replace(options, decoding=options.decoding.bound())  # one stream
    if options.half:
        model = model.half()
    per_image: list[dict[str, float | None]] = []
    kept: list[Tensor] = []
    predictions: list[Tensor] = []
    from tqdm import tqdm

    bar = tqdm(total=len(images), unit="img", disable=not options.progress)
    for start, batch in images.batches(options.batch_size):
        x = batch.to(device)
        if options.half:
            x = x.half()
        coded = code_batch(model, x, options)
        metrics = image_metrics(batch, coded.x_hat.cpu())
        pixels = x.shape[-2] * x.shape[-1]
        for i in range(len(batch)):
            per_image.append(
                {
                    "psnr-rgb": metrics["psnr-rgb"][i],
                    "ms-ssim-rgb": metrics["ms-ssim-rgb"][i],
                    "bpp": coded.bits[i] / pixels,
                    "encoding_time": coded.encoding_time / len(batch),
                    "decoding_time": coded.decoding_time / len(batch),
                    "mse": metrics["mse"][i],
                    "bits": coded.bits[i],
                }
            )
        x_hat = coded.x_hat.clamp(0.0, 1.0)
        if start < keep:
            kept.extend(x_hat[: keep - start].cpu().unbind(0))
        if classifier is not None:
            predictions.append(classifier(x_hat).argmax(dim=1).cpu())
        bar.update(len(batch))
    bar.close()
    return EvalResult(
        metrics=_average(per_image),
        per_image=per_image,
        reconstructions=kept,
        predictions=torch.cat(predictions) if predictions else None,
    )


def summary(
    model: nn.Module,
    images: EvalImages,
    options: EvalOptions,
    classifier: nn.Module,
    rfid_n: int = 0,
    inception: nn.Module | None = None,
    reference: np.ndarray | None = None,
) -> dict[str, float]:
    """One labelled evaluation pass as the model card reports it.

    Returns ``mse``, ``psnr``, ``bits`` (per image), ``class_error`` (of
    ``classifier`` on the reconstructions, against ``images.labels``) and, when
    ``rfid_n`` > 0, ``rfid`` of the first ``rfid_n`` reconstructions against the
    originals' Inception features ``reference``.
    """
    result = evaluate(model, images, options, keep=rfid_n, classifier=classifier)
    out = {
        "mse": result.metrics["mse"],
        "psnr": result.metrics["psnr-rgb"],
        "class_error": (result.predictions != images.labels).double().mean().item(),
        "bits": result.metrics["bits"],
    }
    if rfid_n:
        from compressai_hqa.eval_model.rfid import rfid

        out["rfid"] = rfid(
            result.reconstructions, reference, inception, progress=options.progress
        )
    return out


def _average(per_image: list[dict[str, Any]]) -> dict[str, float | None]:
    sums: dict[str, list[Any]] = defaultdict(list)
    for row in per_image:
        for key, value in row.items():
            sums[key].append(value)
    return {
        key: None if any(v is None for v in values) else float(np.mean(values))
        for key, values in sums.items()
    }


def _now(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()
