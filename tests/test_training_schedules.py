"""Tests of compressai_hqa.training.schedules: temperature and learning rate."""

from __future__ import annotations

import math

import pytest
import torch

from compressai_hqa.training import FlatCosineLR, gumbel_temperature, lr_factor


def test_temperature_is_linear_from_start_to_end() -> None:
    total = 101
    assert gumbel_temperature(0, total, 0.66, 0.01) == pytest.approx(0.66)
    assert gumbel_temperature(50, total, 0.66, 0.01) == pytest.approx((0.66 + 0.01) / 2)
    assert gumbel_temperature(100, total, 0.66, 0.01) == pytest.approx(0.01)
    assert gumbel_temperature(25, total, 0.4, 0.01) == pytest.approx(0.4 - 0.39 / 4)


def test_learning_rate_is_flat_then_cosine_to_a_tenth() -> None:
    total, flat, final = 301, 2 / 3, 0.1
    assert lr_factor(0, total, flat, final) == 1.0
    assert lr_factor(200, total, flat, final) == 1.0  # end of the flat two thirds
    # middle of the annealed third: cos(pi/2) = 0
    assert lr_factor(250, total, flat, final) == pytest.approx(final + (1 - final) / 2)
    assert lr_factor(300, total, flat, final) == pytest.approx(final)
    t = (275 - 200) / 100
    expected = final + (1 - final) * 0.5 * (1 + math.cos(math.pi * t))
    assert lr_factor(275, total, flat, final) == pytest.approx(expected)


def test_scheduler_drives_every_parameter_group() -> None:
    a, b = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.RAdam([{"params": [a], "lr": 4e-4}, {"params": [b], "lr": 1e-3}])
    sched = FlatCosineLR(opt, total_steps=31)
    seen = []
    for _ in range(31):
        seen.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    for step in (0, 15, 25, 30):
        f = lr_factor(step, 31, 2 / 3, 0.1)
        assert seen[step] == pytest.approx([4e-4 * f, 1e-3 * f])
    assert seen[30] == pytest.approx([4e-5, 1e-4])
    state = sched.state_dict()
    restored = FlatCosineLR(opt, total_steps=31)
    restored.load_state_dict(state)
    assert restored.last_epoch == 31
