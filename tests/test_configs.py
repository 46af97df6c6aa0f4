"""Tests of compressai_hqa.configs: the paper's architectures as frozen dataclasses."""

from __future__ import annotations

import dataclasses

import pytest

from compressai_hqa.configs import (
    CELEBA64,
    HAMS_MNIST,
    MNIST,
    VQVAE_MNIST,
    HQAConfig,
    LayerConfig,
)


def test_mnist_matches_table_10() -> None:
    assert MNIST.num_layers == 5 and MNIST.in_channels == 1 and MNIST.image_size == 32
    assert [c.enc_hidden for c in MNIST.layers] == [16, 16, 32, 48, 80]
    assert [c.dec_hidden for c in MNIST.layers] == [16, 32, 48, 80, 128]
    for c in MNIST.layers:
        assert (c.codebook_size, c.codebook_dim) == (256, 64)
        assert (c.enc_layers, c.dec_layers, c.downsample) == (3, 3, True)
        assert (c.quantizer, c.target) == ("probabilistic", "mse")
    assert MNIST.downsampling() == 32  # 1x1 codes: 8 bits per image


def test_celeba_matches_table_9() -> None:
    assert CELEBA64.num_layers == 7 and CELEBA64.in_channels == 3
    assert [c.enc_hidden for c in CELEBA64.layers] == [64, 64, 512, 512, 512, 512, 512]
    assert [c.dropout for c in CELEBA64.layers] == [0.0] * 3 + [0.5] * 4
    assert all(c.codebook_size == 512 for c in CELEBA64.layers)
    assert all((c.enc_layers, c.dec_layers) == (3, 6) for c in CELEBA64.layers)
    # Table 9 input sizes 64, 64, 32, ...: layer 1 keeps the resolution, top codes are 1x1.
    assert [CELEBA64.image_size // CELEBA64.downsampling(i) for i in range(8)] == [
        64,
        64,
        32,
        16,
        8,
        4,
        2,
        1,
    ]


def test_the_baselines_match_tables_12_and_14() -> None:
    assert [c.dec_hidden for c in HAMS_MNIST.layers] == [16, 26, 40, 58, 96]
    assert [c.target for c in HAMS_MNIST.layers] == ["mse"] + ["ce"] * 4
    assert {c.quantizer for c in HAMS_MNIST.layers} == {"ema"}
    # one VQ-VAE per code grid: 8 bits is a 1x1 grid, 2,048 bits 16x16
    for grid, config in VQVAE_MNIST.items():
        (layer,) = config.layers
        steps = layer.downsample_steps
        assert config.image_size // config.downsampling() == grid == 32 >> steps
        assert (layer.enc_layers, layer.dec_layers) == (steps + 1, steps + 2)
        assert layer.quantizer == "ema"
    assert [VQVAE_MNIST[g].layers[0].enc_hidden for g in (16, 8, 4, 2, 1)] == [
        22, 40, 50, 62, 78
    ]  # fmt: skip


def test_config_dicts_hold_the_architecture_only() -> None:
    """A config dict with a recipe's keys is not an architecture (a training
    checkpoint of the first layout is upgraded by the trainer, not here)."""
    with_recipe = MNIST.to_dict()
    with_recipe.update(lr=3e-4, reset_rule="data")
    with pytest.raises(TypeError):
        HQAConfig.from_dict(with_recipe)
    # the architecture lists downsample_steps, quantizer and target only when
    # they are not the defaults (so the .hqa fingerprint of such a stack does
    # not mention them)
    assert set(MNIST.layers[0].architecture()) == {
        "enc_hidden", "dec_hidden", "enc_layers", "dec_layers", "codebook_size",
        "codebook_dim", "downsample", "dec_dilations", "dropout",
    }  # fmt: skip
    assert HAMS_MNIST.layers[1].architecture()["target"] == "ce"
    with pytest.raises(TypeError):
        HQAConfig.from_dict({**MNIST.to_dict(), "colour": "red"})


def test_configs_are_frozen_and_round_trip_as_plain_values() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        MNIST.name = "other"  # type: ignore[misc]
    for cfg in (MNIST, CELEBA64, HAMS_MNIST, VQVAE_MNIST[1]):
        plain = cfg.to_dict()
        assert isinstance(plain["layers"], list) and isinstance(
            plain["layers"][0], dict
        )
        assert HQAConfig.from_dict(plain) == cfg


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"codebook_size": 100}, "power of two"),
        ({"enc_layers": 1}, "enc_layers"),
        ({"dec_layers": 2}, "dec_layers"),
        ({"dec_layers": 5, "dec_dilations": (1,)}, "dec_dilations"),
        ({"dropout": 1.0}, "dropout"),
        ({"downsample_steps": 3}, "downsample_steps"),
        ({"quantizer": "kmeans"}, "quantizer"),
        ({"target": "l1"}, "target"),
    ],
)
def test_invalid_layer_configs_are_rejected(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LayerConfig(enc_hidden=8, dec_hidden=8, **kwargs)


def test_replace_layers() -> None:
    wide = MNIST.replace_layers(enc_hidden=10)
    assert all(c.enc_hidden == 10 for c in wide.layers)
    assert MNIST.layers[0].enc_hidden == 16


def test_layer_1_must_reconstruct_pixels() -> None:
    with pytest.raises(ValueError, match="layer 1"):
        HQAConfig("x", 1, 32, (LayerConfig(enc_hidden=8, dec_hidden=8, target="ce"),))
