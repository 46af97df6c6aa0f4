"""Global normalisation of the inputs of HQA layers >= 2.

Layer l >= 2 of HQA reconstructs the continuous encoder output z_e of layer l-1.
Its input is normalised per channel with running statistics over *all* data seen
during that layer's training (no momentum), frozen afterwards (paper Appendix
C.1). Unlike the original code, statistics are exact (float64, Chan's parallel
update), sized by the channels actually normalised, never updated in eval mode,
and a fresh module is the identity instead of dividing 0 by 0.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn as nn

from torch import Tensor

__all__ = ["GlobalNormalization"]


class GlobalNormalization(nn.Module):
    """Per-channel normalisation with statistics over all data seen in training.

    ``forward`` updates the statistics (training mode only) and normalises;
    :meth:`normalize` and :meth:`unnormalize` never update. Under
    ``torch.distributed`` the batch statistics are all-reduced before the update,
    so every rank holds identical buffers.

    Args:
        num_features: number of channels C of the (B, C, H, W) inputs.
        eps: added to the variance before the square root.
    """

    count: Tensor
    running_mean: Tensor
    running_var: Tensor

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        # The count is an integer buffer so that ``model.half()`` cannot overflow it.
        self.register_buffer("count", torch.zeros((), dtype=torch.int64))
        self.register_buffer(
            "running_mean", torch.zeros(num_features, dtype=torch.float64)
        )
        self.register_buffer(
            "running_var", torch.zeros(num_features, dtype=torch.float64)
        )

    @property
    def mean(self) -> Tensor:
        """Running mean per channel; 0 before any update."""
        return self.running_mean

    @property
    def var(self) -> Tensor:
        """Running population variance per channel; 0 before any update."""
        return self.running_var

    @property
    def std(self) -> Tensor:
        """Scale used by :meth:`normalize`: sqrt(var + eps), or 1 on a fresh module."""
        return torch.where(
            self.count > 0,
            (self.running_var + self.eps).sqrt(),
            torch.ones_like(self.running_var),
        )

    @torch.no_grad()
    def update(self, x: Tensor) -> None:
        """Merges the batch statistics into the running ones (Chan et al.)."""
        self._check(x)
        c = self.num_features
        xs = x.detach().to(torch.float64).transpose(0, 1).reshape(c, -1)
        n = torch.full((1,), xs.shape[1], dtype=torch.float64, device=xs.device)
        batch = torch.cat([n, xs.sum(1), xs.square().sum(1)])
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(batch)
        n, total, total_sq = batch[0], batch[1 : 1 + c], batch[1 + c :]
        batch_mean = total / n
        batch_m2 = (total_sq - total * batch_mean).clamp_min(0.0)
        seen = self.count.to(torch.float64)
        merged = seen + n
        mean = self.running_mean.to(torch.float64)
        delta = batch_mean - mean
        m2 = self.running_var.to(torch.float64) * seen + batch_m2
        m2 = m2 + delta.square() * (seen * n / merged)
        self.running_mean.copy_(mean + delta * (n / merged))
        self.running_var.copy_(m2 / merged)
        self.count.add_(n.to(torch.int64))

    def normalize(self, x: Tensor) -> Tensor:
        self._check(x)
        mean, std = self._stats(x)
        return (x - mean) / std

    def unnormalize(self, x: Tensor) -> Tensor:
        self._check(x)
        mean, std = self._stats(x)
        return x * std + mean

    def forward(self, x: Tensor) -> Tensor:
        if self.training:
            self.update(x)
        return self.normalize(x)

    def _stats(self, x: Tensor) -> tuple[Tensor, Tensor]:
        shape = (1, self.num_features, 1, 1)
        return (
            self.running_mean.to(x.dtype).view(shape),
            self.std.to(x.dtype).view(shape),
        )

    def _check(self, x: Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != self.num_features:
            raise ValueError(
                f"expected a (B, {self.num_features}, H, W) tensor, "
                f"got {tuple(x.shape)}"
            )

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}"
