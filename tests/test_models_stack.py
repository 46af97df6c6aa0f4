"""Tests of compressai_hqa.models.stack.HQAStack: decoding modes and code grids."""

from __future__ import annotations

import pytest
import torch

from conftest import tiny_config

from compressai_hqa import HQA
from compressai_hqa.models import DECODE_MODES


@pytest.fixture(scope="module")
def model() -> HQA:
    torch.manual_seed(0)
    return HQA(tiny_config(num_layers=3, codebook_size=16)).eval()


def test_one_decode_entry_point_for_every_mode(model: HQA) -> None:
    assert DECODE_MODES == ("argmin", "sample", "average")
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        idx = model.quantize(x)
        average = model.decode(
            idx, "average", torch.Generator().manual_seed(1), None, 3
        )
        g = torch.Generator().manual_seed(1)
        draws = [model.decode(idx, "sample", g) for _ in range(3)]
        assert torch.equal(average, (draws[0] + draws[1] + draws[2]) / 3)
        same = model.decode_average(idx, 3, torch.Generator().manual_seed(1))
        assert torch.equal(same, average)
        # decompress and reconstruct take the same modes
        out = model.compress(x)
        decompressed = model.decompress(
            out["strings"], out["shape"], "average", torch.Generator().manual_seed(1),
            num_samples=3,
        )["x_hat"]  # fmt: skip
        assert torch.equal(decompressed, average)
        rebuilt = model.reconstruct(
            x, "average", torch.Generator().manual_seed(1), num_samples=3
        )
        assert torch.equal(rebuilt, average)
    with pytest.raises(ValueError, match="num_samples"):
        model.decode(idx, "average", num_samples=0)
    with pytest.raises(ValueError, match="mode"):
        model.decompress(out["strings"], out["shape"], "mean")


def test_the_temperature_reaches_every_draw(model: HQA) -> None:
    """Draws at a temperature near 0 are the argmin codes at every layer (the top
    one too with ``sample_top``); at 1 they are the default draws, which differ."""
    x = torch.rand(4, 1, 32, 32)
    cold = 1e-6
    with torch.no_grad():
        idx = model.quantize(x)
        argmin = model.decode(idx)
        g = torch.Generator
        sampled = model.decode(idx, "sample", g().manual_seed(2))
        assert not torch.equal(sampled, argmin)
        at_one = model.decode(idx, "sample", g().manual_seed(2), temperature=1.0)
        assert torch.equal(at_one, sampled)
        assert torch.equal(
            model.decode(idx, "sample", g().manual_seed(2), temperature=cold), argmin
        )
        top = model.reconstruct(x, "sample", g().manual_seed(2), sample_top=True)
        assert not torch.equal(top, argmin)
        cold_top = model.reconstruct(
            x, "sample", g().manual_seed(2), sample_top=True, temperature=cold
        )
        assert torch.equal(cold_top, argmin)
        out = model.compress(x)
        cold_stream = model.decompress(
            out["strings"], out["shape"], "sample", g().manual_seed(2), temperature=cold
        )["x_hat"]
        assert torch.equal(cold_stream, argmin)
    with pytest.raises(ValueError, match="temperature"):
        model.decode(idx, "sample", temperature=0.0)


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
