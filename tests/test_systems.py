"""The systems of paper Table 3: each trains, saves, reloads and codes as an HQA."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from compressai_hqa import HQA
from compressai_hqa.configs import VQVAE_MNIST
from compressai_hqa.datasets import load_mnist
from compressai_hqa.models import MnistHQA
from compressai_hqa.systems import SYSTEMS, get_system
from compressai_hqa.training import TrainSettings, train
from compressai_hqa.training.cli import main as train_main
from compressai_hqa.zoo import hqa


def _train(system: str, root: Path, output: Path, **kwargs) -> HQA:
    s = get_system(system)
    options = dict(
        layers=min(2, s.config.num_layers), steps=4, batch_size=16, eval_images=32,
        log_every=2, progress=False, tensorboard=False, system=system,
    )  # fmt: skip
    settings = TrainSettings(s.config, s.recipe, root, output, **{**options, **kwargs})
    return train(settings)


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("system", list(SYSTEMS))
def test_each_system_trains_saves_reloads_and_codes(
    system: str, mnist_root: Path, tmp_path: Path
) -> None:
    torch.manual_seed(0)
    _train(system, mnist_root, tmp_path / "run")
    state = torch.load(tmp_path / "run" / "model.pth", weights_only=True)
    model = HQA.from_state_dict(state).eval()
    assert model.config == SYSTEMS[system].config
    x = load_mnist(mnist_root, train=False).images[:8]
    out = model(x)  # CompressAI's forward: x_hat and likelihoods
    assert out["x_hat"].shape == x.shape
    encoded = model.compress(x)
    decoded = model.decompress(encoded["strings"], encoded["shape"])["x_hat"]
    assert torch.allclose(decoded, out["x_hat"], atol=1e-6)
    bits = 8 * sum(len(s) for s in encoded["strings"][0])
    h, w = model.latent_shape(32, 32)
    assert bits >= 8 * h * w * 8  # one 8-bit code per latent position, at least
    # the same weights through the zoo's loader
    assert torch.equal(hqa(weights=tmp_path / "run" / "model.pth")(x)["x_hat"],
                       out["x_hat"])  # fmt: skip


def test_vqvae_at_8_bits_has_a_1x1_code_grid() -> None:
    system = SYSTEMS["vqvae"]
    model = HQA(system.config)
    assert model.num_layers == 1 and model.latent_shape(32, 32) == (1, 1)
    assert model.bits(32, 32) == 8
    assert {bits: c.name for bits, (c, _) in system.rates().items()} == {
        8: "vqvae-mnist-1x1", 32: "vqvae-mnist-2x2", 128: "vqvae-mnist-4x4",
        512: "vqvae-mnist-8x8", 2048: "vqvae-mnist-16x16",
    }  # fmt: skip
    for bits, (config, layers) in system.rates().items():
        assert HQA(config, layers).bits(32, 32) == bits
    hqa_rates = SYSTEMS["hqa"].rates()
    assert {b: n for b, (_, n) in hqa_rates.items()} == {
        8: 5,
        32: 4,
        128: 3,
        512: 2,
        2048: 1,
    }
    for bits, (config, layers) in hqa_rates.items():
        assert HQA(config, layers).bits(32, 32) == bits
    assert VQVAE_MNIST[16].layers[0].downsample_steps == 1


@pytest.mark.usefixtures("one_thread")
def test_the_hams_target_is_the_lower_layers_code_indices(
    mnist_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Layer 2 of HAMs trains with cross-entropy against layer 1's argmin codes
    of the very input it encodes."""
    from compressai_hqa.models.layer import HQALayer

    seen = []
    forward = HQALayer.forward

    def record(self, x, codes=None):  # type: ignore[no-untyped-def]
        if self.target == "ce":
            seen.append((x.detach().clone(), codes))
        return forward(self, x, codes)

    monkeypatch.setattr(HQALayer, "forward", record)
    model = _train("hams", mnist_root, tmp_path / "run").eval()
    assert len(seen) == 4
    for x, codes in seen:
        assert codes is not None and codes.shape == x.shape[:1] + x.shape[2:]
        assert torch.equal(codes, model.layers[0].quantize(x))
        assert codes.max() < model.layers[0].codebook_size


@pytest.mark.usefixtures("one_thread")
def test_a_model_trained_with_another_recipe_loads_by_its_architecture_name(
    mnist_root: Path, tmp_path: Path
) -> None:
    """The recipe travels with the run, not the weights: a stack trained with
    another learning rate and reset rule loads as ``mnist``."""
    output = tmp_path / "run"
    code = train_main([
        "--config", "mnist", "--data-root", str(mnist_root), "--output", str(output),
        "--layers", "1", "--steps", "3", "--batch-size", "8", "--eval-images", "16",
        "--lr", "3e-4", "--reset", "data", "--no-progress", "--no-tensorboard",
    ])  # fmt: skip
    assert code == 0
    checkpoint = torch.load(output / "checkpoint.pth", weights_only=True)
    assert checkpoint["run"]["recipe"]["layers"][0]["lr"] == 3e-4
    assert checkpoint["run"]["recipe"]["reset_rule"] == "data"
    state = torch.load(output / "model.pth", weights_only=True)
    HQA("mnist", num_layers=1).load_state_dict(state)  # no "config differs"
    MnistHQA(num_layers=1).load_state_dict(state)
    model = hqa(layer=1, weights=output / "model.pth")
    assert model.config.name == "mnist"
