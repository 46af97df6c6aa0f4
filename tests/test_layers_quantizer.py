"""Tests of compressai_hqa.layers.quantizer.ProbabilisticQuantizer."""

from __future__ import annotations

import math

import pytest
import torch

from compressai_hqa.decoding import Decoding
from compressai_hqa.layers import ProbabilisticQuantizer


def _tiny() -> tuple[ProbabilisticQuantizer, torch.Tensor]:
    """K=3 codes in D=2 and two latent positions (B=1, H=1, W=2)."""
    quantizer = ProbabilisticQuantizer(3, 2)
    with torch.no_grad():
        quantizer.codebook.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
    z_e = torch.tensor([[0.0, 0.0], [1.0, 0.5]]).t().reshape(1, 2, 1, 2)
    return quantizer, z_e


def test_loss_terms_equal_hand_computed_values() -> None:
    quantizer, z_e = _tiny()
    # Position 1: z = (0, 0): d = (1, 1, 2).  Position 2: z = (1, .5): d = (.25, 1.25, .25).
    distances = [[1.0, 1.0, 2.0], [0.25, 1.25, 0.25]]
    kl, commit = [], []
    for d in distances:
        weights = [math.exp(-v) for v in d]
        q = [w / sum(weights) for w in weights]
        kl.append(sum(p * (math.log(p) + math.log(3)) for p in q))
        commit.append(sum(p * v for p, v in zip(q, d, strict=True)))
    out = quantizer.eval()(z_e)
    assert out.kl.item() == pytest.approx(sum(kl) / 2, rel=1e-5)
    assert out.commit.item() == pytest.approx(sum(commit) / 2, rel=1e-5)
    assert out.indices.tolist() == [[[0, 0]]]  # ties resolve to the first code
    assert torch.equal(
        out.z_q, torch.tensor([[1.0, 1.0], [0.0, 0.0]]).reshape(1, 2, 1, 2)
    )
    d = quantizer.distances(z_e.permute(0, 2, 3, 1).reshape(-1, 2))
    assert torch.allclose(d, torch.tensor(distances))


def test_relaxed_sample_gradient_reaches_encoder_and_codebook() -> None:
    quantizer, z_e = _tiny()
    quantizer.train()
    z_e = z_e.clone().requires_grad_(True)
    out = quantizer(z_e)
    # Only through the relaxed sample z_q, not the KL / commitment terms.
    (out.z_q * torch.tensor([1.0, -2.0]).view(1, 2, 1, 1)).sum().backward()
    assert z_e.grad is not None and z_e.grad.abs().sum() > 0
    assert (
        quantizer.codebook.grad is not None and quantizer.codebook.grad.abs().sum() > 0
    )
    # In training mode z_q is a soft mixture, not a code vector.
    assert not any(torch.allclose(out.z_q[0, :, 0, 0], e) for e in quantizer.codebook)


def test_temperature_is_a_buffer_that_survives_state_dict() -> None:
    quantizer = ProbabilisticQuantizer(8, 4, temperature=0.66)
    quantizer.temperature.fill_(0.123)
    state = quantizer.state_dict()
    assert "temperature" in state
    fresh = ProbabilisticQuantizer(8, 4)
    fresh.load_state_dict(state)
    assert fresh.temperature.item() == pytest.approx(0.123)


def test_temperature_controls_the_relaxation() -> None:
    quantizer = ProbabilisticQuantizer(16, 4).train()
    z_e = torch.randn(4, 4, 3, 3)
    spread = {}
    for t in (10.0, 0.01):
        quantizer.temperature.fill_(t)
        torch.manual_seed(1)
        y = quantizer(z_e).z_q.permute(0, 2, 3, 1).reshape(-1, 4)
        # distance of each relaxed vector to its nearest code
        spread[t] = (
            torch.cdist(y, quantizer.codebook.detach()).min(1).values.mean().item()
        )
    assert spread[0.01] < 0.05 < 0.5 < spread[10.0]


def test_argmin_and_seeded_sampling() -> None:
    quantizer = ProbabilisticQuantizer(32, 4)
    z_e = torch.randn(2, 4, 5, 3)
    idx = quantizer.quantize(z_e)
    flat = z_e.permute(0, 2, 3, 1).reshape(-1, 4)
    brute = torch.cdist(flat, quantizer.codebook.detach()).argmin(1)
    assert torch.equal(idx.flatten(), brute)
    a = quantizer.quantize(z_e, Decoding("sample", seed=3))
    b = quantizer.quantize(z_e, Decoding("sample", seed=3))
    c = quantizer.quantize(z_e, Decoding("sample", seed=4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    with pytest.raises(ValueError, match="mode"):
        quantizer.quantize(z_e, "nearest")


def test_sampling_follows_the_posterior() -> None:
    quantizer, z_e = _tiny()
    z = z_e[..., :1].expand(1, 2, 1, 20_000).contiguous()
    draws = quantizer.quantize(z, Decoding("sample", seed=0)).flatten()
    freq = torch.bincount(draws, minlength=3).double() / draws.numel()
    q = quantizer.posterior(z_e[..., :1]).flatten().double()
    assert torch.allclose(freq, q, atol=0.015)


def test_sampling_at_a_temperature_follows_the_tempered_posterior() -> None:
    """A draw at temperature t follows softmax(logits / t): flatter above 1, the
    posterior itself at 1 (the same draws as without the argument)."""
    quantizer, z_e = _tiny()
    z = z_e[..., 1:].expand(1, 2, 1, 20_000).contiguous()
    logits = quantizer.logits(z_e[..., 1:]).flatten().double()
    plain = quantizer.quantize(z, Decoding("sample", seed=0))
    at_one = quantizer.quantize(z, Decoding("sample", 1.0, seed=0))
    assert torch.equal(plain, at_one)
    for t in (0.5, 2.0, 4.0):
        draws = quantizer.quantize(z, Decoding("sample", t, seed=1))
        freq = torch.bincount(draws.flatten(), minlength=3).double() / draws.numel()
        assert torch.allclose(freq, (logits / t).softmax(0), atol=0.015), t
    for bad in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="temperature"):
            Decoding("sample", bad)


def _with_dead_code() -> tuple[ProbabilisticQuantizer, torch.Tensor]:
    quantizer = ProbabilisticQuantizer(4, 2, reset_window=20)
    with torch.no_grad():
        quantizer.codebook.copy_(
            torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [50.0, 50.0]])
        )
    z_e = torch.randn(8, 2, 4, 4) * 0.2  # all near code 0: code 3 is dead
    return quantizer, z_e


def test_code_reset_moves_a_dead_code_next_to_the_most_used() -> None:
    quantizer, z_e = _with_dead_code()
    quantizer.train()
    before = quantizer.codebook.detach().clone()
    for _ in range(20):  # one full window: counted, nothing moves yet
        quantizer(z_e)
        assert torch.equal(quantizer.codebook, before)
        assert not quantizer.reset_mask.any()
    assert quantizer.usage.sum() == 20 * 8 * 16 and quantizer.usage[3] == 0
    assert quantizer.usage.argmax() == 0
    out = quantizer(z_e)  # the next call ends the window before using the codebook
    out.z_q.sum().backward()  # the reset does not break autograd
    assert quantizer.reset_mask.nonzero().flatten().tolist() == [3]
    after = quantizer.codebook.detach()
    assert 0 < (after[3] - after[0]).norm() < 0.1
    assert torch.equal(after[:3], before[:3])
    assert quantizer.window_step.item() == 1 and quantizer.usage.sum() == 8 * 16


def test_code_reset_only_in_training_and_when_enabled() -> None:
    quantizer, z_e = _with_dead_code()
    before = quantizer.codebook.detach().clone()
    quantizer.eval()
    for _ in range(60):
        quantizer(z_e)
    assert torch.equal(quantizer.codebook, before) and quantizer.usage.sum() == 0
    quantizer.train()
    quantizer.code_reset = False
    for _ in range(60):
        quantizer(z_e)
    assert torch.equal(quantizer.codebook, before)


def test_embed_validates_indices() -> None:
    quantizer = ProbabilisticQuantizer(4, 2)
    with pytest.raises(ValueError, match="indices"):
        quantizer.embed(torch.tensor([[[4]]]))
    with pytest.raises(TypeError):
        quantizer.embed(torch.tensor([[[0.5]]]))
    with pytest.raises(ValueError, match="latents"):
        quantizer.quantize(torch.randn(1, 3, 2, 2))


def _clusters(centres: list[tuple[float, float]], sizes: list[int]) -> torch.Tensor:
    """A (1, 2, 1, N) batch of z_e: ``sizes[i]`` points around ``centres[i]``."""
    points = [
        torch.tensor(c) + 0.05 * torch.randn(n, 2)
        for c, n in zip(centres, sizes, strict=True)
    ]
    return torch.cat(points).t().reshape(1, 2, 1, -1)


def test_data_reset_reseeds_every_dead_code_at_batch_points() -> None:
    torch.manual_seed(0)
    quantizer = ProbabilisticQuantizer(6, 2, reset_window=5, reset_rule="data")
    far = [[200.0, 200.0], [-200.0, 200.0], [200.0, -200.0], [-200.0, -200.0]]
    with torch.no_grad():
        quantizer.codebook.copy_(torch.tensor([[0.0, 0.0], [10.0, 0.0], *far]))
    # code 0: 200 points a batch; code 1: 10 (5 % of code 0's count: rare but
    # alive); codes 2-5 take nothing (dead). Three clusters of points are far
    # from every code: the dead codes must move there, one per cluster.
    new = [(0.0, 10.0), (10.0, 10.0), (-10.0, 0.0)]
    z_e = _clusters([(0.0, 0.0), (10.0, 0.0), *new], [200, 10, 20, 20, 20])
    quantizer.train()
    for _ in range(5):
        quantizer(z_e)
    assert (
        quantizer.usage[1] > 0.03 * quantizer.usage[0]
        and quantizer.usage[2:].sum() == 0
    )
    before = quantizer.codebook.detach().clone()
    quantizer(z_e)  # the window ends: dead codes are re-seeded before this batch
    after = quantizer.codebook.detach()
    moved = quantizer.reset_mask.nonzero().flatten().tolist()
    # three far clusters: three dead codes re-seeded; the fourth would sit within
    # reset_min_distance of a new code, so it stays where it was
    assert moved == [2, 3, 4]
    assert torch.equal(after[:2], before[:2]) and torch.equal(after[5], before[5])
    points = z_e.reshape(2, -1).t()
    for k in moved:  # each new code is one of the batch's points...
        assert (points == after[k]).all(1).any()
    # ...and the three new codes sit in the three distinct far clusters
    nearest = {
        int(torch.cdist(after[k : k + 1], torch.tensor(new)).argmin()) for k in moved
    }
    assert nearest == {0, 1, 2}
    assert quantizer.quantize(z_e).unique().numel() == 5  # all clusters now coded


def test_data_reset_finds_far_points_in_every_column_of_a_large_batch() -> None:
    # A layer-2-like batch: 512 images of an 8x8 latent grid (32,768 positions,
    # more than the reset's candidate subsample). Every position sits at the one
    # live code except column 3 of each image, which holds a far cluster. A
    # strided subsample (stride 8 = the grid width) saw column 0 only and never
    # revived a code there; every dead code but one must now be re-seeded.
    torch.manual_seed(0)
    quantizer = ProbabilisticQuantizer(4, 2, reset_window=1, reset_rule="data")
    with torch.no_grad():
        quantizer.codebook.copy_(
            torch.tensor([[0.0, 0.0], [-90.0, 0.0], [-90.0, 90.0], [0.0, -90.0]])
        )
    z_e = 0.05 * torch.randn(512, 2, 8, 8)
    z_e[:, 0, :, 3] += 20.0
    z_e[:, 1, :, 3] += torch.where(torch.arange(512) % 2 == 0, 20.0, -20.0)[:, None]
    quantizer.train()
    quantizer(z_e)  # counts one window: codes 1-3 are dead
    quantizer(z_e)  # the window ends: dead codes move to the far column's clusters
    moved = quantizer.reset_mask.nonzero().flatten().tolist()
    assert len(moved) == 2
    clusters = torch.tensor([[20.0, 20.0], [20.0, -20.0]])
    nearest = torch.cdist(quantizer.codebook.detach()[moved], clusters)
    assert nearest.min(1).values.max() < 1.0  # each new code is in a cluster...
    assert set(nearest.argmin(1).tolist()) == {0, 1}  # ...one per cluster
    assert quantizer.quantize(z_e).unique().numel() == 3


def test_data_reset_leaves_a_full_codebook_alone() -> None:
    quantizer = ProbabilisticQuantizer(3, 2, reset_window=2, reset_rule="data")
    centres = [(0.0, 0.0), (10.0, 0.0), (0.0, 10.0)]
    with torch.no_grad():
        quantizer.codebook.copy_(torch.tensor(centres))
    z_e = _clusters(centres, [30, 30, 30])
    quantizer.train()
    before = quantizer.codebook.detach().clone()
    for _ in range(7):
        quantizer(z_e)
        assert not quantizer.reset_mask.any()
    assert torch.equal(quantizer.codebook, before)


def test_reset_rule_is_validated() -> None:
    with pytest.raises(ValueError, match="reset_rule"):
        ProbabilisticQuantizer(4, 2, reset_rule="kmeans")
