"""Per-step schedules of greedy HQA training (paper Appendix C.1).

* Gumbel-softmax temperature: linear from ``start`` (first step) to ``end`` (last).
* Learning rate: flat for the first ``flat_fraction`` of the steps, then cosine
  annealed to ``final_ratio`` times the base rate at the last step ("cosine
  annealed in the final third of training"). Unlike the original code's FlatCA
  scheduler, every parameter group is scheduled.
"""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

__all__ = ["FlatCosineLR", "gumbel_temperature", "lr_factor"]


def gumbel_temperature(step: int, total: int, start: float, end: float) -> float:
    """Temperature at ``step`` in [0, total): ``start`` at 0, ``end`` at total - 1."""
    if total <= 1:
        return end
    t = min(max(step, 0), total - 1) / (total - 1)
    return start + (end - start) * t


def lr_factor(step: int, total: int, flat_fraction: float, final_ratio: float) -> float:
    """Learning-rate multiplier at ``step`` in [0, total).

    1 while ``step <= flat_fraction * (total - 1)``, then
    ``final_ratio + (1 - final_ratio) * (1 + cos(pi * t)) / 2`` with ``t`` going
    linearly from 0 to 1 at the last step.
    """
    last = max(total - 1, 1)
    flat = flat_fraction * last
    step = min(max(step, 0), last)
    if step <= flat:
        return 1.0
    t = (step - flat) / (last - flat)
    return final_ratio + (1.0 - final_ratio) * 0.5 * (1.0 + math.cos(math.pi * t))


class FlatCosineLR(LRScheduler):
    """:func:`lr_factor` as a scheduler: call ``step()`` after each optimiser step.

    Args:
        optimizer: the optimiser (all its parameter groups are scheduled).
        total_steps: number of training steps.
        flat_fraction: fraction of steps at the base rate.
        final_ratio: final rate as a fraction of the base rate.
        last_epoch: index of the last step taken (-1: none).
    """

    def __init__(
        self,
        optimizer: Optimizer,
        total_steps: int,
        flat_fraction: float = 2.0 / 3.0,
        final_ratio: float = 0.1,
        last_epoch: int = -1,
    ) -> None:
        self.total_steps = total_steps
        self.flat_fraction = flat_fraction
        self.final_ratio = final_ratio
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        f = lr_factor(
            self.last_epoch, self.total_steps, self.flat_fraction, self.final_ratio
        )
        return [base * f for base in self.base_lrs]
