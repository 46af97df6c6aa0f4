"""Code statistics: usage, posterior entropy and the spread of stochastic decodes."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import tiny_config

from compressai_hqa import HQA
from compressai_hqa.eval_model.codes import (
    code_statistics,
    decode_spread,
    distinct_codes,
    entropy_bits,
)


def _spread_codes(model: HQA, images: torch.Tensor) -> None:
    """Puts the top codebook on the top layer's z_e, so several codes are used."""
    with torch.no_grad():
        z = model.encode(images).movedim(1, -1).reshape(-1, 8)
        model.top.quantizer.codebook.copy_(z[torch.randperm(len(z))[:16]])


def test_usage_and_entropy_match_the_argmin_codes() -> None:
    model = HQA(tiny_config(num_layers=2, codebook_size=16)).eval()
    images = torch.rand(30, 1, 32, 32)
    _spread_codes(model, images)
    stats = code_statistics(model, images, batch_size=7)
    codes = model.quantize(images).flatten()
    used = codes.unique()
    assert stats.codes_used == len(used) > 1 and stats.bits_per_code == 4
    p = torch.bincount(codes, minlength=16).double()[used] / codes.numel()
    assert stats.entropy_bits == pytest.approx(float(-(p * p.log2()).sum()))
    assert 0 < stats.entropy_bits <= 4
    with torch.no_grad():
        q = model.top.quantizer.posterior(model.encode(images)).double()
    expected = float(-(q * q.clamp_min(1e-300).log2()).sum(-1).mean())
    assert stats.posterior_entropy_bits == pytest.approx(expected, rel=1e-5)


def test_near_copies_of_a_code_count_once() -> None:
    torch.manual_seed(0)
    apart = torch.randn(5, 64) * 10  # five distinct codes
    # code 0 copied as the paper's reset copies (N(0, 0.01^2) noise), then a copy
    # of that copy: a chain of three; code 1 copied once
    copy = apart[0] + 0.01 * torch.randn(64)
    codes = torch.cat([apart, copy[None], (copy + 0.01 * torch.randn(64))[None],
                       (apart[1] + 0.01 * torch.randn(64))[None]])  # fmt: skip
    assert distinct_codes(codes) == 5
    assert distinct_codes(codes, radius2=1e-6) == 8
    assert distinct_codes(apart) == 5 and distinct_codes(apart[:1]) == 1
    # code_statistics counts the used codes only
    model = HQA(tiny_config(num_layers=1, codebook_size=16)).eval()
    images = torch.rand(4, 1, 32, 32)
    _spread_codes(model, images)
    stats = code_statistics(model, images)
    used = model.top.codebook[model.quantize(images).unique()]
    assert stats.distinct_codes_used == distinct_codes(used)
    # every code a near-copy of code 0: one distinct code, several used
    with torch.no_grad():
        cb = model.top.quantizer.codebook
        cb[1:].copy_(cb[0] + 0.01 * torch.randn(15, 8))
    stats = code_statistics(model, images)
    assert stats.distinct_codes_used == 1 < stats.codes_used


def test_posterior_entropy_spans_one_hot_to_uniform() -> None:
    model = HQA(tiny_config(num_layers=1, codebook_size=16)).eval()
    images = torch.rand(4, 1, 32, 32)
    with torch.no_grad():  # all codes equal: q is uniform, entropy log2 K
        model.top.quantizer.codebook.zero_()
    assert code_statistics(model, images).posterior_entropy_bits == pytest.approx(4)
    with torch.no_grad():  # codes far apart, z_e on code 0: q is one-hot
        model.top.quantizer.codebook.copy_(torch.randn(16, 8) * 100)
        model.top.quantizer.codebook[0].zero_()
        model.top.encoder.net[-1].weight.zero_()
        model.top.encoder.net[-1].bias.zero_()
    stats = code_statistics(model, images)
    assert stats.codes_used == 1 and stats.posterior_entropy_bits < 1e-6


def test_decode_spread_is_zero_for_argmin_like_posteriors_and_positive_otherwise() -> (
    None
):
    model = HQA(tiny_config(num_layers=2, codebook_size=16)).eval()
    images = torch.rand(6, 1, 32, 32)
    with torch.no_grad():  # lower codes all equal: every sample is the same code vector
        model.layers[0].quantizer.codebook.zero_()
    assert decode_spread(model, images, num_samples=3) == 0.0
    with torch.no_grad():  # a flat posterior over distinct codes: samples differ
        model.layers[0].quantizer.codebook.copy_(torch.randn(16, 8) * 1e-3)
    spread = decode_spread(model, images, num_samples=3)
    assert spread > 0 and math.isfinite(spread)
    assert decode_spread(model, images, num_samples=3) == spread  # seeded
    with pytest.raises(ValueError, match="num_samples"):
        decode_spread(model, images, num_samples=1)


def test_entropy_of_one_used_code_is_plus_zero() -> None:
    counts = torch.tensor([0, 7, 0])
    assert f"{entropy_bits(counts):.2f}" == "0.00"
    assert entropy_bits(torch.tensor([1, 1, 1, 1])) == pytest.approx(2.0)
