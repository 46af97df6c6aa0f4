"""rFID: FID between reconstructions and the originals of the same images.

The Inception features of the originals do not depend on the codec, so they are
computed once per dataset, number of images and Inception weights, and cached in
:func:`compressai_hqa.files.cache_dir` (``fid_features/``): evaluating several
qualities or checkpoints then costs one Inception pass each.
"""

from __future__ import annotations

import hashlib

from collections.abc import Sequence

import numpy as np
import torch.nn as nn

from torch import Tensor

from compressai_hqa.eval_model.data import EvalImages
from compressai_hqa.files import atomic_write, cache_dir
from compressai_hqa.metrics.fid import frechet_distance, inception_features

__all__ = ["FID_BATCH_SIZE", "reference_features", "rfid"]

#: Images per Inception forward pass (pytorch-fid's default).
FID_BATCH_SIZE = 50


def reference_features(
    images: EvalImages, count: int, inception: nn.Module, progress: bool = False
) -> np.ndarray:
    """Inception features (count, 2048) of the first ``count`` originals, cached.

    The cache key is the SHA-256 of the images' pixels, ``count`` and the source
    of the Inception weights.
    """
    source = getattr(inception, "weights_source", "unknown")
    key = hashlib.sha256(
        f"{source}|{count}|{images.fingerprint(count)}".encode()
    ).hexdigest()
    path = cache_dir() / "fid_features" / f"{key[:32]}.npy"
    if path.is_file():
        return np.load(path)
    originals = images.subset(count).images
    features = inception_features(
        originals, inception, FID_BATCH_SIZE, progress=progress
    )
    atomic_write(path, lambda f: np.save(f, features))
    return features


def rfid(
    reconstructions: Sequence[Tensor],
    reference: np.ndarray,
    inception: nn.Module,
    progress: bool = False,
) -> float:
    """FID between reconstructions (C, H, W) in [0, 1] and the originals' features."""
    if len(reconstructions) != len(reference):
        raise ValueError(
            f"{len(reconstructions)} reconstructions for {len(reference)} originals"
        )
    features = inception_features(
        reconstructions, inception, FID_BATCH_SIZE, progress=progress
    )
    return frechet_distance(features, reference)
