"""Tests of compressai_hqa.zoo: building stacks by config and layer, loading weights."""

from __future__ import annotations

import pytest
import torch

from compressai_hqa import HQA
from compressai_hqa.zoo import PretrainedUnavailableError, hqa, layer_for_quality


def test_defaults_build_the_paper_mnist_stack() -> None:
    model = hqa()
    assert model.config.name == "mnist" and model.num_layers == 5
    assert model.config.in_channels == 1
    assert hqa(layer=3).num_layers == 3
    celeba = hqa(layer=2, config="celeba64")
    assert celeba.config.in_channels == 3 and celeba.num_layers == 2
    with pytest.raises(ValueError, match="layer"):
        hqa(layer=6)


def test_quality_rises_with_rate() -> None:
    assert [layer_for_quality("mnist", q) for q in range(1, 6)] == [5, 4, 3, 2, 1]
    assert layer_for_quality("celeba64", 1) == 7
    with pytest.raises(ValueError, match="quality"):
        layer_for_quality("mnist", 0)


def test_weights_from_a_path(tmp_path) -> None:
    model = HQA("mnist")
    path = tmp_path / "stack.pth"
    torch.save({"state_dict": model.state_dict(), "step": 3}, path)
    loaded = hqa(layer=4, weights=str(path))
    assert loaded.num_layers == 4 and not loaded.training
    x = torch.rand(1, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(x)["x_hat"], model.eval().truncate(4)(x)["x_hat"])
    with pytest.raises(FileNotFoundError):
        hqa(weights=str(tmp_path / "missing.pth"))


def test_unavailable_pretrained_weights_raise_a_clear_error(monkeypatch) -> None:
    from compressai_hqa.zoo import pretrained

    monkeypatch.setattr(pretrained, "PRETRAINED", {})
    with pytest.raises(PretrainedUnavailableError, match="no pretrained HQA weights"):
        hqa(layer=5, pretrained=True)
