"""``docs/extending.md``, followed: a model family for a new 3-channel dataset (a
CIFAR-10-shaped folder of 32x32 colour images) registered as the document says,
then trained (the trainer's command line), compressed and decompressed (the
codec's command line) and evaluated (``python -m compressai_hqa.eval_model``),
each reading the family from the registry. And a decoding mode added where the
document says reaches every decode path."""

from __future__ import annotations

import json

from pathlib import Path

import compressai.registry
import compressai.zoo
import compressai.zoo.image
import numpy as np
import pytest
import torch

from PIL import Image

from compressai_hqa import families, recipes, registration

IMAGES = 64


def _cifar_like(folder: Path, count: int = IMAGES, seed: int = 0) -> Path:
    """``count`` 32x32 RGB PNGs: a colour gradient with a rectangle and a disc of
    random colours and places (structured, so that a stack can learn something)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:32, 0:32] / 31.0
    folder.mkdir(parents=True)
    for i in range(count):
        low, high = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
        image = low + (high - low) * (xx if i % 2 else yy)[..., None]
        top, left = rng.integers(0, 20, 2)
        image[top : top + 12, left : left + 8] = rng.uniform(0, 1, 3)
        cy, cx, r = *rng.integers(6, 26, 2), rng.integers(3, 7)
        image[(yy * 31 - cy) ** 2 + (xx * 31 - cx) ** 2 < r * r] = rng.uniform(0, 1, 3)
        pixels = np.round(image * 255).astype(np.uint8)
        Image.fromarray(pixels, "RGB").save(folder / f"{i:05d}.png")
    return folder


@pytest.fixture
def registry_snapshot():
    """Every table a registration touches, restored afterwards."""
    tables = [
        families.FAMILIES,
        recipes.RECIPES,
        registration.ZOO_MODELS,
        compressai.registry.MODELS,
        compressai.zoo.image_models,
        compressai.zoo.models,
        compressai.zoo.image.model_architectures,
    ]
    saved = [dict(t) for t in tables]
    yield
    for table, copy in zip(tables, saved, strict=True):
        table.clear()
        table.update(copy)


def _register_cifar10() -> None:
    """docs/extending.md, "A dataset and its config", from your own code."""
    from compressai_hqa.configs import HQAConfig, LayerConfig
    from compressai_hqa.families import Family
    from compressai_hqa.recipes import Recipe, add_recipe
    from compressai_hqa.registration import register_family

    cifar10 = HQAConfig(
        name="cifar10",
        in_channels=3,
        image_size=32,
        layers=tuple(
            LayerConfig(enc_hidden=16, dec_hidden=16, codebook_size=64, codebook_dim=16)
            for _ in range(2)
        ),
    )
    add_recipe("hqa-cifar10", Recipe.uniform(2, temp_start=0.5))
    register_family(
        Family(
            cifar10,
            "hqa-cifar10",
            "folder",
            compressai=True,
            description="2 layers, 32x32 colour images, K = 64",
        )
    )


def test_a_new_dataset_family_trains_compresses_decompresses_and_evaluates(
    tmp_path: Path, registry_snapshot: None, capsys: pytest.CaptureFixture[str]
) -> None:
    from compressai_hqa.codec.cli import main as codec
    from compressai_hqa.datasets import load_image
    from compressai_hqa.eval_model.__main__ import main as eval_model
    from compressai_hqa.models import HQA
    from compressai_hqa.training.cli import main as train

    images = _cifar_like(tmp_path / "cifar")
    _register_cifar10()

    # train: the family's config, recipe and dataset transform (random crops of a
    # folder, never the faces crop of a 3-channel config)
    run = tmp_path / "run"
    status = train(["--config", "cifar10", "--data-root", str(images),
                    "--output", str(run), "--steps", "2", "--batch-size", "8",
                    "--num-workers", "0", "--eval-images", "16", "--device", "cpu",
                    "--no-progress", "--no-tensorboard"])  # fmt: skip
    assert status == 0
    checkpoint = torch.load(run / "checkpoint.pth", weights_only=True)
    assert checkpoint["run"]["dataset"] == "folder"
    assert checkpoint["run"]["recipe"]["temp_start"] == 0.5  # the family's recipe
    weights = run / "model.pth"
    model = HQA.from_state_dict(torch.load(weights, weights_only=True)).eval()
    assert model.config == families.get_config("cifar10") and model.num_layers == 2

    # compress and decompress: --model names the family
    packed, out = tmp_path / "cifar.hqa", tmp_path / "decoded"
    weights_args = ["--weights", str(weights), "-q"]
    compress = ["compress", str(images), "-o", str(packed), "--model", "hqa-cifar10"]
    assert codec([*compress, *weights_args]) == 0  # the file names the family
    assert codec(["decompress", str(packed), "-o", str(out), *weights_args]) == 0
    x = torch.stack([load_image(p) for p in sorted(images.glob("*.png"))])
    with torch.no_grad():
        stream = model.compress(x)
        x_hat = model.decompress(stream["strings"], stream["shape"])["x_hat"]
    expected = (x_hat.clamp(0, 1) * 255).round().to(torch.uint8)
    decoded = sorted(out.glob("*.png"))
    assert len(decoded) == IMAGES
    for i in (0, IMAGES - 1):
        png = torch.from_numpy(np.array(Image.open(decoded[i]))).permute(2, 0, 1)
        assert torch.equal(png, expected[i])
    # 64 codes of 6 bits (8x8 grid) per image at layer 2, plus the header
    assert packed.stat().st_size < IMAGES * 8 * 8 * 6 // 8 + 100
    capsys.readouterr()

    # evaluate: CompressAI's command line finds hqa-cifar10 through the registry,
    # and FAMILY:ROOT reads the folder as the family reads its data
    result = eval_model(["checkpoint", f"cifar10:{images}", "-a", "hqa-cifar10",
                         "-p", str(weights), "--entropy-estimation"])  # fmt: skip
    printed = json.loads(capsys.readouterr().out)
    assert printed["results"] == result["results"]
    mse = torch.mean((x_hat.clamp(0, 1) - x) ** 2).item()
    assert result["results"]["mse"][0] == pytest.approx(mse, rel=1e-4)
    assert result["results"]["bits"][0] == pytest.approx(8 * 8 * 6)


def test_the_familys_name_is_taken_once(registry_snapshot: None) -> None:
    _register_cifar10()
    _register_cifar10()  # the same family again: nothing changes
    assert "hqa-cifar10" in compressai.zoo.image_models
    model = compressai.zoo.image_models["hqa-cifar10"](quality=1)
    assert model.num_layers == 2 and model.config.in_channels == 3
    from compressai_hqa.families import Family

    with pytest.raises(ValueError, match="a different family named 'cifar10'"):
        registration.register_family(
            Family(families.get_config("cifar10"), "hqa-cifar10", "faces")
        )


def test_a_decoding_mode_is_one_entry_that_every_path_and_command_offers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """docs/extending.md, "A decoding mode": a DecodeMode subclass and its entry
    in decoding._MODES; the commands' --decode choices are DECODE_MODES."""
    import argparse

    from conftest import tiny_config

    from compressai_hqa import HQA, Decoding, decoding
    from compressai_hqa.codec.cli import build_parser as codec_parser
    from compressai_hqa.eval_model.__main__ import setup_args as eval_parser

    def decode_choices(parser: argparse.ArgumentParser) -> set:
        found = set()
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    found |= decode_choices(sub)
            elif "--decode" in action.option_strings:
                found.add(tuple(action.choices))
        return found

    for parser in (codec_parser(), eval_parser()):
        assert decode_choices(parser) == {decoding.DECODE_MODES}

    class SecondBest(decoding.DecodeMode):
        """The second most likely code of every posterior."""

        name = "second"

        def codes(self, logits, generator, temperature):
            return logits.topk(2, dim=-1).indices[..., 1]

    monkeypatch.setitem(decoding._MODES, "second", SecondBest())
    torch.manual_seed(0)
    model = HQA(tiny_config(num_layers=3)).eval()
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        indices = model.quantize(x)
        second = model.decode(indices, Decoding("second"))
        argmin = model.decode(indices, "argmin")
        stream = model.compress(x)
        via_bits = model.decompress(stream["strings"], stream["shape"], "second")
    assert not torch.equal(second, argmin)
    assert torch.equal(via_bits["x_hat"], second)
