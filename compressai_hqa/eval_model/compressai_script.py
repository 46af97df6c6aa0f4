"""HQA inside CompressAI's own ``python -m compressai.utils.eval_model``.

CompressAI's script evaluates one image at a time with ``inference(model, x)``
(or ``inference_entropy_estimation``), and its choices do not suit HQA: it reads
every image as RGB (a grayscale digit becomes three equal channels, which the
single-channel ``hqa-mnist`` refuses), zero-pads it to a multiple of 64 (a 32x32
digit would be coded as a 64x64 image, four times the bits at every layer), and
computes MS-SSIM, which pytorch-msssim refuses (an ``AssertionError``) for images
of 160 pixels or less.

:func:`adapt`, run inside the script by the start-up hook (``_compressai_hqa_hook``)
or by hand, replaces those two functions by ones that give an HQA model to
:func:`~compressai_hqa.eval_model.evaluate.evaluate`, the loop of ``python -m
compressai_hqa.eval_model``, so that both print the same numbers: the image in
the model's channels (a colour image for a grayscale model is an error), unpadded
(HQA pads by replication and crops back itself), ``ms-ssim-rgb`` NaN when the
image is too small, ``mse`` and ``bits`` added. Any other model gets CompressAI's
original function.
"""

from __future__ import annotations

import functools
import math

from collections.abc import Callable
from typing import Any

import torch

from torch import Tensor

from compressai_hqa.eval_model.data import EvalImages
from compressai_hqa.eval_model.evaluate import EvalOptions, evaluate
from compressai_hqa.models import HQA

__all__ = ["adapt", "hqa_inference"]

_FUNCTIONS = {"inference": False, "inference_entropy_estimation": True}


def adapt(namespace: dict[str, Any]) -> None:
    """Makes CompressAI's eval_model script evaluate HQA models as the wrapper does.

    Args:
        namespace: the globals of ``compressai.utils.eval_model.__main__``; its
            ``inference`` and ``inference_entropy_estimation`` are replaced (once).

    Raises:
        KeyError: the namespace lacks one of them (another CompressAI script).
    """
    for name, entropy_estimation in _FUNCTIONS.items():
        original = namespace[name]
        if not getattr(original, "hqa_adapted", False):
            namespace[name] = _hqa_first(original, entropy_estimation)


def _hqa_first(original: Callable[..., Any], entropy_estimation: bool) -> Callable:
    @functools.wraps(original)
    def inference(model: torch.nn.Module, x: Tensor, *args: Any, **kwargs: Any):  # type: ignore[no-untyped-def]
        if isinstance(model, HQA):
            return hqa_inference(model, x, entropy_estimation)
        return original(model, x, *args, **kwargs)

    inference.hqa_adapted = True  # type: ignore[attr-defined]
    return inference


def hqa_inference(
    model: HQA, x: Tensor, entropy_estimation: bool = False
) -> dict[str, float]:
    """One image through an HQA model, with the wrapper's metrics.

    Args:
        model: the HQA model, in eval mode, on its device.
        x: the image (C, H, W) in [0, 1], as CompressAI's script read it (RGB).
        entropy_estimation: rate from the likelihoods instead of the bitstream.

    Returns:
        ``psnr-rgb``, ``ms-ssim-rgb`` (NaN below 161 pixels), ``bpp``,
        ``encoding_time``, ``decoding_time``, ``mse`` and ``bits``.

    Raises:
        ValueError: a colour image for a single-channel model.
    """
    image = _model_channels(model, x).unsqueeze(0).cpu()
    options = EvalOptions(
        entropy_estimation=entropy_estimation, half=x.dtype == torch.float16
    )
    row = evaluate(model, EvalImages("image", image, ("image",)), options).per_image
    return {k: math.nan if v is None else float(v) for k, v in row[0].items()}


def _model_channels(model: HQA, x: Tensor) -> Tensor:
    channels = model.config.in_channels
    if x.shape[0] == channels:
        return x
    if channels == 1 and x.shape[0] == 3:
        if torch.equal(x[0], x[1]) and torch.equal(x[1], x[2]):
            return x[:1]  # a grayscale file, read as RGB
        raise ValueError(
            "this HQA model takes grayscale images and CompressAI's eval_model read "
            "a colour image; convert it with python -m compressai_hqa.eval_model "
            "... --color-mode L"
        )
    raise ValueError(
        f"this HQA model takes {channels}-channel images, got {x.shape[0]} channels"
    )
