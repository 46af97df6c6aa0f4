"""Tests of compressai_hqa.configs: the paper's tables as frozen dataclasses."""

from __future__ import annotations

import dataclasses

import pytest

from compressai_hqa.configs import CELEBA64, MNIST, HQAConfig, LayerConfig, get_config


def test_mnist_matches_table_10() -> None:
    assert MNIST.num_layers == 5 and MNIST.in_channels == 1 and MNIST.image_size == 32
    assert [c.enc_hidden for c in MNIST.layers] == [16, 16, 32, 48, 80]
    assert [c.dec_hidden for c in MNIST.layers] == [16, 32, 48, 80, 128]
    for c in MNIST.layers:
        assert (c.codebook_size, c.codebook_dim, c.batch_size) == (256, 64, 512)
        assert (c.beta_entropy, c.beta_commit) == (1e-3, 1e-3)
        assert (c.enc_layers, c.dec_layers, c.downsample) == (3, 3, True)
    assert (MNIST.temp_start, MNIST.temp_end, MNIST.lr) == (0.66, 0.01, 4e-4)
    assert MNIST.downsampling() == 32  # 1x1 codes: 8 bits per image


def test_celeba_matches_table_9() -> None:
    assert CELEBA64.num_layers == 7 and CELEBA64.in_channels == 3
    assert [c.enc_hidden for c in CELEBA64.layers] == [64, 64, 512, 512, 512, 512, 512]
    assert [c.steps for c in CELEBA64.layers] == [100_000] * 4 + [
        60_000,
        30_000,
        30_000,
    ]
    assert [c.dropout for c in CELEBA64.layers] == [0.0] * 3 + [0.5] * 4
    assert all(
        c.codebook_size == 512 and c.beta_entropy == 5e-5 for c in CELEBA64.layers
    )
    assert all(
        (c.enc_layers, c.dec_layers, c.batch_size) == (3, 6, 1024)
        for c in CELEBA64.layers
    )
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
    assert CELEBA64.temp_start == 0.4


def test_configs_are_frozen_and_round_trip_as_plain_values() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        MNIST.lr = 1.0  # type: ignore[misc]
    for cfg in (MNIST, CELEBA64):
        plain = cfg.to_dict()
        assert isinstance(plain["layers"], list) and isinstance(
            plain["layers"][0], dict
        )
        assert HQAConfig.from_dict(plain) == cfg
    assert get_config("mnist") is MNIST
    with pytest.raises(ValueError, match="unknown HQA config"):
        get_config("imagenet")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"codebook_size": 100}, "power of two"),
        ({"enc_layers": 1}, "enc_layers"),
        ({"dec_layers": 2}, "dec_layers"),
        ({"dec_layers": 5, "dec_dilations": (1,)}, "dec_dilations"),
        ({"dropout": 1.0}, "dropout"),
    ],
)
def test_invalid_layer_configs_are_rejected(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LayerConfig(enc_hidden=8, dec_hidden=8, **kwargs)


def test_replace_layers() -> None:
    wide = MNIST.replace_layers(steps=10)
    assert all(c.steps == 10 for c in wide.layers) and MNIST.layers[0].steps == 18_000
