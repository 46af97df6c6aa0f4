"""Tests of compressai_hqa.layers.normalization.GlobalNormalization."""

from __future__ import annotations

import numpy as np
import torch

from compressai_hqa.layers import GlobalNormalization


def test_running_statistics_are_exact_over_batches() -> None:
    norm = GlobalNormalization(4).train()
    rng = np.random.default_rng(0)
    batches = [
        rng.normal(
            loc=[3.0, -1.0, 0.0, 10.0], scale=[1.0, 0.1, 5.0, 2.0], size=(n, 5, 3, 4)
        )
        .transpose(0, 3, 1, 2)
        .astype(np.float32)
        for n in (7, 1, 13, 4)
    ]
    for b in batches:
        norm(torch.from_numpy(b))
    everything = np.concatenate(batches).astype(np.float64)
    expected_mean = everything.mean(axis=(0, 2, 3))
    expected_var = everything.var(axis=(0, 2, 3))
    assert int(norm.count) == sum(b.shape[0] * 5 * 3 for b in batches)
    np.testing.assert_allclose(norm.mean.numpy(), expected_mean, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(norm.var.numpy(), expected_var, rtol=1e-10)
    x = torch.from_numpy(batches[0])
    expected = (batches[0] - expected_mean[None, :, None, None]) / np.sqrt(
        expected_var[None, :, None, None] + norm.eps
    )
    np.testing.assert_allclose(
        norm.normalize(x).numpy(), expected, rtol=1e-5, atol=1e-5
    )
    np.testing.assert_allclose(
        norm.unnormalize(norm.normalize(x)).numpy(), batches[0], atol=1e-4
    )


def test_fresh_module_in_eval_is_identity_without_nan() -> None:
    norm = GlobalNormalization(3).eval()
    x = torch.randn(2, 3, 4, 4)
    y = norm(x)
    assert not torch.isnan(y).any()
    assert torch.equal(y, x)
    assert torch.equal(norm.unnormalize(x), x)


def test_eval_mode_never_updates_statistics() -> None:
    norm = GlobalNormalization(2).train()
    norm(torch.randn(3, 2, 4, 4))
    before = {k: v.clone() for k, v in norm.state_dict().items()}
    norm.eval()
    norm(torch.randn(5, 2, 4, 4) * 10)
    norm.normalize(torch.randn(5, 2, 4, 4))
    assert all(torch.equal(before[k], v) for k, v in norm.state_dict().items())


def test_half_precision_keeps_the_integer_count() -> None:
    norm = GlobalNormalization(2).train()
    for _ in range(3):
        norm(torch.randn(64, 2, 32, 32))
    count = int(norm.count)
    assert count > 65504  # would overflow float16
    norm.half()
    assert norm.count.dtype == torch.int64 and int(norm.count) == count
    y = norm.normalize(torch.randn(1, 2, 4, 4).half())
    assert torch.isfinite(y).all()
