"""Fréchet Inception Distance: Inception features and the Fréchet distance.

FID compares the Gaussian statistics of the 2048-d Inception pool features of two
image sets (M. Heusel et al., `"GANs Trained by a Two Time-Scale Update Rule
Converge to a Local Nash Equilibrium" <https://arxiv.org/abs/1706.08500>`_,
NeurIPS 2017). The HQA paper reports rFID: the FID between the reconstructions
and the originals of the same test images (:mod:`compressai_hqa.eval_model.rfid`).
The network is pytorch-fid's, loaded offline by
:mod:`compressai_hqa.metrics.inception`; the distance is pytorch-fid's
``calculate_frechet_distance``.
"""

from __future__ import annotations

import contextlib
import sys
import warnings

from collections.abc import Iterator, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from torch import Tensor

from compressai_hqa.metrics.inception import (
    FEATURE_DIM,
    check_fid_available,
    load_inception,
)

__all__ = ["fid", "frechet_distance", "inception_features"]


@torch.no_grad()
def inception_features(
    images: Tensor | Sequence[Tensor],
    model: nn.Module | None = None,
    batch_size: int = 50,
    device: torch.device | str | None = None,
    progress: bool = False,
) -> np.ndarray:
    """Pool features (N, 2048), float32, of images in [0, 1].

    Args:
        images: a (N, C, H, W) tensor or a sequence of (C, H, W) tensors, with
            C = 1 (repeated to 3 channels, as for grayscale in pytorch-fid) or 3.
        model: from :func:`load_inception` (default: loaded on ``device``).
        batch_size: images per forward pass.
        device: where to run (default: the model's device, or CPU).
        progress: show a progress bar.
    """
    if model is None:
        model = load_inception("cpu" if device is None else device)
    device = next(model.parameters()).device if device is None else device
    model = model.to(device)
    count = len(images)
    out = np.empty((count, FEATURE_DIM), dtype=np.float32)
    from tqdm import tqdm

    bar = tqdm(total=count, desc="Inception", unit="img", disable=not progress)
    start = 0
    for batch in _batches(images, batch_size):
        batch = batch.to(device=device, dtype=torch.float32)
        if batch.shape[1] == 1:
            batch = batch.repeat(1, 3, 1, 1)
        elif batch.shape[1] != 3:
            raise ValueError(f"images must have 1 or 3 channels, got {batch.shape[1]}")
        features = model(batch)[0].flatten(1)
        out[start : start + len(batch)] = features.cpu().numpy()
        start += len(batch)
        bar.update(len(batch))
    bar.close()
    return out


def frechet_distance(features1: np.ndarray, features2: np.ndarray) -> float:
    """FID between two feature sets, with pytorch-fid's ``calculate_frechet_distance``.

    With fewer images than feature dimensions, both sets lie in a subspace of
    dimension at most ``n1 + n2 - 1``; the features are first expressed in an
    orthonormal basis of it. The distance is invariant under this change of
    basis, so the result is the same, but the matrix square root costs
    milliseconds instead of tens of seconds on a CPU.

    Args:
        features1: (n1, d) features, n1 >= 2.
        features2: (n2, d) features, n2 >= 2.
    """
    check_fid_available()
    from pytorch_fid.fid_score import calculate_frechet_distance

    f1 = np.asarray(features1, dtype=np.float64)
    f2 = np.asarray(features2, dtype=np.float64)
    if f1.ndim != 2 or f2.ndim != 2 or f1.shape[1] != f2.shape[1]:
        raise ValueError(
            f"features must be (n, d) arrays of equal d, got {f1.shape}, {f2.shape}"
        )
    if len(f1) < 2 or len(f2) < 2:
        raise ValueError("FID needs at least 2 images in each set")
    mu1, mu2 = f1.mean(axis=0), f2.mean(axis=0)
    if len(f1) + len(f2) - 1 < f1.shape[1]:
        span = np.concatenate([f1 - mu1, f2 - mu2, (mu1 - mu2)[None]])
        basis, _ = np.linalg.qr(span.T)
        f1, f2 = f1 @ basis, f2 @ basis
        mu1, mu2 = f1.mean(axis=0), f2.mean(axis=0)
    sigma1 = np.cov(f1, rowvar=False)
    sigma2 = np.cov(f2, rowvar=False)
    # pytorch-fid prints (to stdout, where eval_model writes its JSON) when it
    # regularises a singular product, and passes sqrtm's deprecated `disp`.
    with warnings.catch_warnings(), contextlib.redirect_stdout(sys.stderr):
        warnings.filterwarnings("ignore", message=".*`disp`", category=Warning)
        return float(calculate_frechet_distance(mu1, sigma1, mu2, sigma2))


def fid(
    images1: Tensor | Sequence[Tensor],
    images2: Tensor | Sequence[Tensor],
    model: nn.Module | None = None,
    batch_size: int = 50,
    device: torch.device | str | None = None,
) -> float:
    """FID between two sets of images in [0, 1] (see :func:`inception_features`)."""
    if model is None:
        model = load_inception("cpu" if device is None else device)
    return frechet_distance(
        inception_features(images1, model, batch_size, device),
        inception_features(images2, model, batch_size, device),
    )


def _batches(images: Tensor | Sequence[Tensor], batch_size: int) -> Iterator[Tensor]:
    """Batches of a tensor, or of a list of images of possibly different sizes.

    Images of different sizes are resized to 299x299 one by one with the very
    interpolation pytorch-fid's ``InceptionV3`` applies (which then leaves them
    unchanged), so that they can be stacked.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if isinstance(images, Tensor):
        if images.dim() != 4:
            raise ValueError(f"images must be (N, C, H, W), got {tuple(images.shape)}")
        for i in range(0, len(images), batch_size):
            yield images[i : i + batch_size]
        return
    same_size = len({tuple(img.shape) for img in images}) <= 1
    for i in range(0, len(images), batch_size):
        chunk = [img.float() for img in images[i : i + batch_size]]
        if not same_size:
            chunk = [
                F.interpolate(
                    img.unsqueeze(0),
                    size=(299, 299),
                    mode="bilinear",
                    align_corners=False,
                ).squeeze(0)
                for img in chunk
            ]
        yield torch.stack(chunk)
