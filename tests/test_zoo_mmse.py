"""The shipped MMSE decoders of the pretrained MNIST stack."""

from __future__ import annotations

import pytest
import torch

from compressai_hqa.datasets import load_mnist
from compressai_hqa.files import file_digest
from compressai_hqa.models import HQA
from compressai_hqa.zoo import PretrainedUnavailableError, hqa
from compressai_hqa.zoo import mmse as zoo_mmse
from compressai_hqa.zoo.pretrained import shipped_weights_path


def test_shipped_file_is_pinned_small_and_half_precision() -> None:
    filename, sha256 = zoo_mmse.PRETRAINED_MMSE["mnist"]
    path = shipped_weights_path(filename)
    assert file_digest(path) == sha256
    assert filename == f"hqa-mnist-mmse-{sha256[:8]}.pth"
    assert path.stat().st_size < 2_000_000
    state = torch.load(path, weights_only=True)
    floats = [v for v in state.values() if torch.is_tensor(v) and v.is_floating_point()]
    assert floats and all(v.dtype == torch.float16 for v in floats)


def test_shipped_decoders_fit_every_truncation() -> None:
    stack = hqa(pretrained=True)
    decoders = zoo_mmse.pretrained_mmse(stack)
    assert decoders.layers == (1, 2, 3, 4, 5) and not decoders.training
    assert [decoders.specs[k].kind for k in decoders.layers] == ["path"] * 4 + ["table"]
    assert zoo_mmse.pretrained_mmse(hqa(layer=3, pretrained=True)).layers == (1, 2, 3)
    with pytest.raises(ValueError, match="differ"):
        zoo_mmse.pretrained_mmse(HQA("mnist"))  # an untrained stack: other codes


def test_unshipped_config_raises(monkeypatch) -> None:
    monkeypatch.setattr(zoo_mmse, "PRETRAINED_MMSE", {})
    with pytest.raises(PretrainedUnavailableError, match="no MMSE decoders"):
        zoo_mmse.pretrained_mmse(hqa(pretrained=True))


def test_mmse_beats_argmin_on_the_first_1000_test_digits(mnist_root) -> None:
    test = load_mnist(mnist_root, train=False)
    stack = hqa(pretrained=True)
    decoders = zoo_mmse.mmse_decoders(stack)
    with torch.no_grad():
        for layer in decoders.layers:
            model = stack.truncate(layer)
            codes = model.quantize(test.images)
            argmin = torch.mean((model.decode(codes) - test.images) ** 2)
            mmse = torch.mean((decoders(codes, layer) - test.images) ** 2)
            assert mmse < 0.95 * argmin, layer
