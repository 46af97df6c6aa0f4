"""Tests of compressai_hqa.layers.ema_quantizer.EMAQuantizer (VQ-VAE's codebook)."""

from __future__ import annotations

import pytest
import torch

from compressai_hqa.layers import EMAQuantizer


def _hand_made() -> tuple[EMAQuantizer, torch.Tensor]:
    """K = 3 codes in D = 2 and four positions (B=1, H=2, W=2)."""
    quantizer = EMAQuantizer(3, 2, decay=0.9, eps=1e-5)
    codebook = torch.tensor([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]])
    quantizer.codebook.copy_(codebook)
    quantizer.code_sum.copy_(codebook)
    quantizer.initialized.fill_(True)  # codes set by hand: no data seeding
    # positions: (0.5, 0) and (-0.5, 1) -> code 0; (3, 1) and (5, 0) -> code 1
    z = torch.tensor([[0.5, 0.0], [-0.5, 1.0], [3.0, 1.0], [5.0, 0.0]])
    return quantizer, z.t().reshape(1, 2, 2, 2)


def test_the_ema_update_matches_its_formula_on_a_hand_made_batch() -> None:
    quantizer, z_e = _hand_made()
    out = quantizer.train()(z_e)
    assert out.indices.flatten().tolist() == [0, 0, 1, 1]
    gamma, eps, k = 0.9, 1e-5, 3
    counts = torch.tensor([2.0, 2.0, 0.0])
    sums = torch.tensor([[0.0, 1.0], [8.0, 1.0], [0.0, 0.0]])
    n = gamma * torch.ones(3) + (1 - gamma) * counts  # started at N_k = 1
    m = gamma * torch.tensor([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]]) + (1 - gamma) * sums
    smoothed = (n + eps) / (n.sum() + k * eps) * n.sum()
    expected = m / smoothed.unsqueeze(1)
    assert torch.allclose(quantizer.cluster_size, n)
    assert torch.allclose(quantizer.code_sum, m)
    assert torch.allclose(quantizer.codebook, expected, atol=1e-6)
    # the unused code stays where it was (m_k / N_k = e_k, up to eps)
    assert torch.allclose(quantizer.codebook[2], torch.tensor([0.0, 4.0]), atol=1e-4)


def test_repeated_batches_converge_to_the_cluster_means() -> None:
    quantizer, z_e = _hand_made()
    quantizer.train()
    for _ in range(60):  # 0.9^60 = 0.002 of the start is left
        quantizer(z_e)
    assert torch.allclose(quantizer.codebook[0], torch.tensor([0.0, 0.5]), atol=1e-2)
    assert torch.allclose(quantizer.codebook[1], torch.tensor([4.0, 0.5]), atol=1e-2)
    assert torch.allclose(quantizer.codebook[2], torch.tensor([0.0, 4.0]), atol=0.05)


def test_outputs_straight_through_commitment_and_no_update_in_eval() -> None:
    quantizer, z_e = _hand_made()
    before = quantizer.codebook.clone()
    z_e = z_e.clone().requires_grad_(True)
    out = quantizer.eval()(z_e)
    assert torch.equal(quantizer.codebook, before)  # eval: nothing moves
    codes = quantizer.embed(out.indices)
    assert torch.allclose(out.z_q, codes)
    expected = float((z_e.detach() - codes).square().mean())
    assert out.commit.item() == pytest.approx(expected)
    assert out.kl.item() == 0.0
    out.z_q.sum().backward()
    assert torch.equal(z_e.grad, torch.ones_like(z_e))  # straight-through
    assert torch.equal(quantizer.quantize(z_e), out.indices)
    with pytest.raises(ValueError, match="point mass"):  # nothing to draw
        quantizer.quantize(z_e, "sample")
    assert set(quantizer.state_dict()) == {
        "codebook",
        "cluster_size",
        "code_sum",
        "initialized",
        "usage",
        "window_step",
    }


def test_decay_is_validated() -> None:
    with pytest.raises(ValueError, match="decay"):
        EMAQuantizer(4, 2, decay=1.0)


def test_the_first_training_batch_seeds_every_code_at_a_batch_point() -> None:
    torch.manual_seed(0)
    quantizer = EMAQuantizer(16, 64).train()
    # a fresh encoder's outputs: close to the origin, far from N(0, 1) codes
    z_e = 0.05 * torch.randn(8, 64, 4, 4)
    points = z_e.permute(0, 2, 3, 1).reshape(-1, 64)
    assert torch.cdist(points, quantizer.codebook).argmin(1).unique().numel() == 1
    quantizer.init_from_data(z_e)
    seeded = quantizer.codebook.clone()
    # every code is one of the batch's points, no two the same point
    match = torch.cdist(seeded, points).argmin(1)
    assert torch.equal(points[match], seeded) and match.unique().numel() == 16
    assert bool(quantizer.initialized)
    assert torch.equal(quantizer.cluster_size, torch.ones(16))
    out = quantizer(z_e)  # seeded already: the EMA update only
    assert out.indices.unique().numel() == 16


def test_training_seeds_the_codes_once_and_eval_never() -> None:
    torch.manual_seed(0)
    quantizer = EMAQuantizer(8, 2)
    z_e = 0.05 * torch.randn(1, 2, 3, 3)  # 9 positions >= 8 codes
    before = quantizer.codebook.clone()
    quantizer.eval()(z_e)
    assert torch.equal(quantizer.codebook, before) and not quantizer.initialized
    out = quantizer.train()(z_e)
    assert bool(quantizer.initialized) and out.indices.unique().numel() >= 7
    seeded = quantizer.codebook.clone()
    quantizer(100.0 + z_e)  # a later batch moves codes by EMA, never re-seeds
    assert not torch.isin(quantizer.codebook, 100.0 + z_e).all()
    assert (quantizer.codebook - seeded).abs().max() < 20.0


def test_the_seeded_flag_is_part_of_the_state_dict() -> None:
    quantizer = EMAQuantizer(4, 2)
    quantizer.initialized.fill_(True)
    state = quantizer.state_dict()
    fresh = EMAQuantizer(4, 2)
    fresh.load_state_dict(state)
    assert bool(fresh.initialized)
    del state["initialized"]
    with pytest.raises(RuntimeError, match="initialized"):
        EMAQuantizer(4, 2).load_state_dict(state)


def test_code_reset_revives_dead_codes_at_batch_points_once_per_window() -> None:
    torch.manual_seed(0)
    quantizer = EMAQuantizer(8, 2, reset_window=3).train()
    z_e = 0.05 * torch.randn(4, 2, 4, 4)  # 64 positions
    quantizer.init_from_data(z_e)
    far = torch.full((2,), 50.0)
    quantizer.codebook[5:] = far  # three codes no position will choose
    quantizer.code_sum[5:] = far
    points = z_e.permute(0, 2, 3, 1).reshape(-1, 2)
    for _ in range(4):  # resetting off (the default): a window ends, no revival
        quantizer(z_e)
    assert torch.allclose(quantizer.codebook[5:], far.expand(3, 2), atol=0.01)
    quantizer.set_code_reset(True)
    quantizer(z_e)  # the window restarted at the last step: not due yet
    quantizer(z_e)
    assert torch.allclose(quantizer.codebook[5:], far.expand(3, 2), atol=0.01)
    quantizer(z_e)  # the window ends: the three dead codes move to batch points
    # (then the same step's EMA update moves them with the points they took)
    revived = quantizer.codebook[5:]
    assert float(torch.cdist(revived, points).min(1).values.max()) < 0.05
    assert quantizer(z_e).indices.unique().numel() > 5  # and they are chosen
