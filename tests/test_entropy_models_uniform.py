"""Tests of compressai_hqa.entropy_models.uniform: rANS under a uniform prior."""

from __future__ import annotations

import math

import pytest
import torch

from compressai_hqa.entropy_models import UniformCategoricalCoder


@pytest.mark.parametrize("codebook_size", [2, 256, 512, 1024])
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 8, 64, 256, 2048])
def test_round_trip_and_rate(codebook_size: int, n: int) -> None:
    coder = UniformCategoricalCoder(codebook_size)
    symbols = torch.randint(0, codebook_size, (3, n))
    symbols[0] = codebook_size - 1  # the last symbol sits next to the escape slot
    strings = coder.compress(symbols)
    assert len(strings) == 3 and all(isinstance(s, bytes) for s in strings)
    assert torch.equal(coder.decompress(strings, (n,)), symbols)
    bound = 1.001 * n * math.log2(codebook_size) / 8 + 8
    assert all(len(s) <= bound for s in strings), ([len(s) for s in strings], bound)


def test_likelihoods_are_uniform() -> None:
    coder = UniformCategoricalCoder(256)
    lik = coder.likelihoods(torch.zeros(2, 1, 3, 3, dtype=torch.long))
    assert lik.shape == (2, 1, 3, 3) and torch.all(lik == 1 / 256)
    assert coder.bits_per_symbol == 8


def test_bad_input_is_refused() -> None:
    coder = UniformCategoricalCoder(16)
    with pytest.raises(ValueError, match="symbols"):
        coder.compress(torch.tensor([[16]]))
    with pytest.raises(ValueError, match="symbols"):
        coder.compress(torch.tensor([[-1]]))
    with pytest.raises(ValueError, match="bitstream"):
        coder.decompress([b"abc"], (4,))
    with pytest.raises(ValueError):
        UniformCategoricalCoder(1)
