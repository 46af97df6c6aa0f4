"""Tests of compressai_hqa.models.stack.HQAStack: decoding modes and code grids."""

from __future__ import annotations

import pytest
import torch

from conftest import tiny_config

from compressai_hqa import DECODE_MODES, HQA, Decoding


@pytest.fixture(scope="module")
def model() -> HQA:
    torch.manual_seed(0)
    return HQA(tiny_config(num_layers=3, codebook_size=16)).eval()


def test_one_decode_entry_point_for_every_mode(model: HQA) -> None:
    assert DECODE_MODES == ("argmin", "sample", "average", "mmse")
    x = torch.rand(2, 1, 32, 32)
    average3 = Decoding("average", num_samples=3, seed=1)
    with torch.no_grad():
        idx = model.quantize(x)
        average = model.decode(idx, average3)
        g = torch.Generator().manual_seed(1)
        draws = [model.decode(idx, Decoding("sample", generator=g)) for _ in range(3)]
        assert torch.equal(average, (draws[0] + draws[1] + draws[2]) / 3)
        assert torch.equal(model.decode(idx, "argmin"), model.decode(idx))
        # decompress and reconstruct take the same decodings
        out = model.compress(x)
        decompressed = model.decompress(out["strings"], out["shape"], average3)
        assert torch.equal(decompressed["x_hat"], average)
        assert torch.equal(model.reconstruct(x, average3), average)
    with pytest.raises(ValueError, match="num_samples"):
        Decoding("average", num_samples=0)
    with pytest.raises(ValueError, match="mode"):
        model.decompress(out["strings"], out["shape"], "mean")


def test_the_temperature_reaches_every_draw(model: HQA) -> None:
    """Draws at a temperature near 0 are the argmin codes at every layer (the top
    one too with ``sample_top``); at 1 they are the default draws, which differ."""
    x = torch.rand(4, 1, 32, 32)
    cold = Decoding("sample", 1e-6, seed=2)
    with torch.no_grad():
        idx = model.quantize(x)
        argmin = model.decode(idx)
        sampled = model.decode(idx, Decoding("sample", seed=2))
        assert not torch.equal(sampled, argmin)
        at_one = model.decode(idx, Decoding("sample", 1.0, seed=2))
        assert torch.equal(at_one, sampled)
        assert torch.equal(model.decode(idx, cold), argmin)
        top = model.reconstruct(x, Decoding("sample", seed=2), sample_top=True)
        assert not torch.equal(top, argmin)
        assert torch.equal(model.reconstruct(x, cold, sample_top=True), argmin)
        out = model.compress(x)
        cold_stream = model.decompress(out["strings"], out["shape"], cold)["x_hat"]
        assert torch.equal(cold_stream, argmin)
    with pytest.raises(ValueError, match="temperature"):
        Decoding("sample", temperature=0.0)


def test_code_grids_and_logits(model: HQA) -> None:
    assert model.codebook_size == 16
    grids = model.code_grids(32, 32)
    assert grids.shape == (16, 4, 4) and grids.dtype == torch.int64
    assert all((grids[k] == k).all() for k in range(16))
    assert model.code_grids(9, 7, [3, 5]).shape == (2, 2, 1)  # ceil(9 / 8), 1
    x = torch.rand(3, 1, 32, 32)
    with torch.no_grad():
        logits = model.logits(x)
        assert logits.shape == (3, 4, 4, 16)
        assert torch.equal(logits.argmax(-1), model.quantize(x))
        lik = model.likelihoods(model.quantize(x))
        assert lik.shape == (3, 1, 4, 4) and torch.equal(
            lik, model(x)["likelihoods"]["codes"]
        )
        assert torch.allclose(lik, torch.full_like(lik, 1 / 16))
