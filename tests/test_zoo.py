"""Tests of compressai_hqa.zoo: building stacks by config and layer, loading weights."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from conftest import ROOT

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


def test_weights_of_another_config_are_an_error(tmp_path) -> None:
    path = tmp_path / "mnist.pth"
    torch.save(HQA("mnist", num_layers=2).state_dict(), path)
    assert hqa(weights=str(path)).config.name == "mnist"  # config from the weights
    assert hqa(weights=str(path), config="mnist").num_layers == 2
    with pytest.raises(ValueError, match=r"'mnist'.*does not match.*'celeba64'"):
        hqa(weights=str(path), config="celeba64")
    with pytest.raises(ValueError, match="does not match"):
        hqa(weights=str(path), config="mnist-wide")  # same channels, other widths
    with pytest.raises(ValueError, match="layer"):
        hqa(layer=3, weights=str(path))
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(path.read_bytes()[:500])
    with pytest.raises(ValueError, match="cannot read checkpoint"):
        hqa(weights=str(truncated))


def test_unavailable_pretrained_weights_raise_a_clear_error(monkeypatch) -> None:
    from compressai_hqa.families import FAMILIES

    no_weights = dataclasses.replace(FAMILIES["mnist"], weights=None)
    monkeypatch.setitem(FAMILIES, "mnist", no_weights)
    with pytest.raises(PretrainedUnavailableError, match="no pretrained HQA weights"):
        hqa(layer=5, pretrained=True)


# ------------------------------------------------------------- shipped weights
CARD = ROOT / "zoo" / "results" / "v3"  # the shipped (v3) stack's card


def _card(name: str) -> dict:
    return json.loads((CARD / name).read_text())


def test_shipped_weights_are_pinned_and_load_in_eval_mode() -> None:
    from compressai_hqa.families import FAMILIES
    from compressai_hqa.files import file_digest
    from compressai_hqa.zoo import pretrained

    filename, sha256 = dataclasses.astuple(FAMILIES["mnist"].weights)
    path = pretrained.shipped_weights_path(filename)
    assert file_digest(path) == sha256
    model = hqa(layer=5, pretrained=True)
    assert model.num_layers == 5 and not model.training
    assert [hqa(layer=k, pretrained=True).bits(32, 32) for k in range(1, 6)] == [
        2048, 512, 128, 32, 8,
    ]  # fmt: skip


def test_corrupted_weights_are_refused(tmp_path, monkeypatch) -> None:
    from compressai_hqa.families import FAMILIES
    from compressai_hqa.zoo import pretrained

    filename = FAMILIES["mnist"].weights.filename
    data = bytearray(pretrained.shipped_weights_path(filename).read_bytes())
    data[len(data) // 2] ^= 0xFF
    corrupt = tmp_path / filename
    corrupt.write_bytes(bytes(data))
    monkeypatch.setattr(pretrained, "shipped_weights_path", lambda name: corrupt)
    with pytest.raises(RuntimeError, match="corrupt or not the released file"):
        hqa(layer=5, pretrained=True)


def test_shipped_weights_reproduce_the_card_on_the_first_1000_test_digits(
    mnist_root,
) -> None:
    """Argmin decoding is deterministic: MSE to 1e-5, class error to 2 digits.

    The shipped subset holds exactly these 1,000 digits.
    """
    from compressai_hqa.eval_model.data import load_eval_images
    from compressai_hqa.eval_model.evaluate import EvalOptions, evaluate
    from compressai_hqa.metrics.classifier import load_classifier

    card = _card("mnist-test-first1000.json")
    assert card["num_images"] == 1000
    images = load_eval_images(f"mnist:{mnist_root}").subset(1000)
    assert len(images) == 1000
    classifier = load_classifier()
    stack = hqa(pretrained=True)
    for layer, expected in card["layers"].items():
        model = stack.truncate(int(layer))
        result = evaluate(
            model, images, EvalOptions(batch_size=500), classifier=classifier
        )
        error = (result.predictions != images.labels).double().mean().item()
        assert result.metrics["mse"] == pytest.approx(
            expected["argmin"]["mse"], abs=1e-5
        )
        assert abs(error - expected["argmin"]["class_error"]) <= 0.002, layer
        assert result.metrics["bits"] == expected["argmin"]["stream_bits"]


def test_compressai_finds_the_pretrained_models() -> None:
    import compressai.zoo

    for quality in (1, 5):
        model = compressai.zoo.image_models["hqa-mnist"](
            quality=quality, pretrained=True
        )
        assert model.num_layers == 6 - quality and not model.training


def test_eval_model_pretrained_mode_quality_rises_with_rate(
    tmp_path, mnist_root
) -> None:
    from compressai_hqa.eval_model.__main__ import main

    out = main(
        [
            "pretrained", f"mnist:{mnist_root}", "-a", "hqa-mnist", "-q", "1,2,3,4,5",
            "--num-images", "200", "--classifier", "-d", str(tmp_path), "-o", "zoo.json",
        ]
    )  # fmt: skip
    results = out["results"]
    card = _card("mnist-test.json")["layers"]
    assert results["bits"] == [
        card[str(6 - q)]["argmin"]["stream_bits"] for q in range(1, 6)
    ]
    assert results["bpp"] == sorted(results["bpp"])
    assert results["mse"] == sorted(results["mse"], reverse=True)
    assert (tmp_path / "zoo.json").is_file()
