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
    g = torch.Generator().manual_seed(0)
    assert torch.equal(quantizer.quantize(z_e, "sample", g), out.indices)
    assert set(quantizer.state_dict()) == {
        "codebook",
        "cluster_size",
        "code_sum",
        "usage",
        "window_step",
    }


def test_decay_is_validated() -> None:
    with pytest.raises(ValueError, match="decay"):
        EMAQuantizer(4, 2, decay=1.0)
