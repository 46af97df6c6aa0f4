"""Tests of compressai_hqa.models.state: the HQA state dict and partial loading."""

from __future__ import annotations

import pytest
import torch

from conftest import tiny_config

from compressai_hqa import HQA
from compressai_hqa.configs import MNIST, MNIST_WIDE
from compressai_hqa.entropy_models import quantize_frequencies
from compressai_hqa.models import state_dict_config
from compressai_hqa.models.state import STATE_DICT_FORMAT


def test_the_extra_state_is_plain_values() -> None:
    model = HQA(tiny_config(num_layers=2))
    model.set_code_prior(1, quantize_frequencies(range(16)))
    extra = model.state_dict()["_extra_state"]
    assert extra["format"] == STATE_DICT_FORMAT == "compressai_hqa.HQA/1"
    assert extra["config"] == model.config.to_dict() and extra["num_layers"] == 2
    assert extra["code_priors"] == {"1": list(quantize_frequencies(range(16)))}
    assert state_dict_config(model.state_dict()) == (model.config, 2)
    with pytest.raises(ValueError, match="not an HQA state dict"):
        state_dict_config([1, 2])


def test_stored_layers_load_into_another_config_of_the_same_architecture() -> None:
    """``--init``: the wider upper layers of mnist-wide on a trained mnist base."""
    base = HQA(MNIST, num_layers=1)
    base.set_code_prior(1, quantize_frequencies(range(256)))
    grown = HQA.from_state_dict(base.state_dict(), num_layers=2, config=MNIST_WIDE)
    assert grown.config is MNIST_WIDE and grown.num_layers == 2
    for key, value in base.state_dict().items():
        if key != "_extra_state":
            assert torch.equal(grown.state_dict()[key], value), key
    assert grown.code_priors == base.code_priors
    with pytest.raises(ValueError, match="does not match"):
        HQA.from_state_dict(base.state_dict(), num_layers=2, config="celeba64")
    wide = HQA(MNIST_WIDE, num_layers=2).state_dict()
    with pytest.raises(ValueError, match="does not match"):  # layer 2 is wider
        HQA.from_state_dict(wide, num_layers=2, config=MNIST)
