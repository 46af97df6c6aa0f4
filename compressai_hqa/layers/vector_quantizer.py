"""What every quantiser of an HQA layer shares (:class:`VectorQuantizer`).

A codebook of K codes of dimension D, the posterior ``q(k|z) =
softmax_k(-||z - e_k||^2)`` (distances in fp32), hard codes picked as a
:class:`~compressai_hqa.decoding.Decoding` says, code lookups, and the count of
code usage over windows of training batches that code resetting reads. The
quantisers are :class:`~compressai_hqa.layers.ProbabilisticQuantizer` (HQA) and
:class:`~compressai_hqa.layers.EMAQuantizer` (VQ-VAE's).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from torch import Tensor

from compressai_hqa.decoding import Decoding
from compressai_hqa.layers.training_settings import LayerTraining

__all__ = ["QuantizerOutput", "VectorQuantizer", "from_rank0"]


@dataclass
class QuantizerOutput:
    """What :meth:`ProbabilisticQuantizer.forward` returns.

    Attributes:
        z_q: quantised latents (B, D, H, W): the relaxed sample in training, the
            argmin codes in eval mode.
        indices: argmin code indices (B, H, W).
        kl: mean over positions of KL(q || uniform) = sum_k q (log q + log K).
        commit: mean over positions of sum_k q_k ||z - e_k||^2.
        perplexity: exp of the entropy of the batch-averaged posterior.
    """

    z_q: Tensor
    indices: Tensor
    kl: Tensor
    commit: Tensor
    perplexity: Tensor


class VectorQuantizer(nn.Module):
    """What every quantiser of a layer shares: a codebook of K codes of dimension
    D, the posterior ``q(k|z) = softmax_k(-||z - e_k||^2)`` (a point mass on the
    nearest code for deterministic quantisers), lookups, and the count of code
    usage over windows of ``reset_window`` training batches.

    Subclasses pass their first training settings to ``__init__``, create
    :attr:`codebook` (a parameter or a buffer, saved as ``codebook``) and
    implement ``forward`` (returning :class:`QuantizerOutput`); their training
    settings change only through :meth:`configure_training`.
    """

    usage: Tensor
    window_step: Tensor
    codebook: Tensor
    reset_threshold: float

    def __init__(
        self, codebook_size: int, codebook_dim: int, settings: LayerTraining
    ) -> None:
        super().__init__()
        self.codebook_size = codebook_size
        self.codebook_dim = codebook_dim
        self.configure_training(settings)

    def _usage_buffers(self) -> None:
        # State-dict names (usage, window_step) are part of the checkpoint format.
        self.register_buffer(
            "usage", torch.zeros(self.codebook_size, dtype=torch.int64)
        )
        self.register_buffer("window_step", torch.zeros((), dtype=torch.int64))

    # ------------------------------------------------------------------ maths
    def distances(self, z: Tensor) -> Tensor:
        """Squared distances ||z - e_k||^2 in fp32, (N, K) for z of shape (N, D)."""
        return -self._neg_distances(z)

    def _neg_distances(self, z: Tensor) -> Tensor:
        # -||z - e||^2 = 2 z.e - ||e||^2 - ||z||^2 <= 0, in fp32 even under autocast.
        with torch.autocast(device_type=z.device.type, enabled=False):
            z = z.float()
            e = self.codebook.float()
            logits = torch.addmm(-e.square().sum(1), z, e.t(), alpha=2.0)
            return (logits - z.square().sum(1, keepdim=True)).clamp_max(0.0)

    def logits(self, z_e: Tensor) -> Tensor:
        """Unnormalised log posterior ``-d`` as (B, H, W, K) for z_e (B, D, H, W)."""
        self._check(z_e)
        b, _, h, w = z_e.shape
        flat = z_e.permute(0, 2, 3, 1).reshape(-1, self.codebook_dim)
        return self._neg_distances(flat).view(b, h, w, self.codebook_size)

    def posterior(self, z_e: Tensor) -> Tensor:
        """q(k | z_e) as (B, H, W, K)."""
        return self.logits(z_e).softmax(-1)

    def configure_training(self, settings: LayerTraining) -> None:
        """Sets the code-reset settings of the next training steps (the usage
        window and the dead-code threshold; subclasses read their own too)."""
        self.reset_window = settings.reset_window
        self.reset_threshold = settings.reset_threshold

    # -------------------------------------------------------------- inference
    def quantize(self, z_e: Tensor, decoding: Decoding | str = "argmin") -> Tensor:
        """Hard code indices (B, H, W), picked from q(k|z_e) as ``decoding`` says.

        Args:
            z_e: continuous latents (B, D, H, W).
            decoding: a :class:`~compressai_hqa.decoding.Decoding` or a mode
                name: ``"argmin"`` (the nearest code, deterministic) or
                ``"sample"`` (a draw from softmax(logits / temperature); 1 is
                q(k|z_e) itself, the paper).

        Raises:
            ValueError: a mode that picks no codes (``"average"``).
        """
        decoding = Decoding.of(decoding)
        return decoding.codes(self.logits(z_e))

    def embed(self, indices: Tensor) -> Tensor:
        """Code vectors (B, D, H, W) for indices (B, H, W)."""
        if indices.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"indices must be an integer tensor, got {indices.dtype}")
        if indices.numel() and (
            indices.min() < 0 or indices.max() >= self.codebook_size
        ):
            raise ValueError(f"indices must be in [0, {self.codebook_size})")
        return F.embedding(indices.long(), self.codebook).permute(0, 3, 1, 2)

    # --------------------------------------------------------------- training
    @torch.no_grad()
    def _count(self, indices: Tensor, counts: Tensor | None = None) -> None:
        """Adds the batch's hard code assignments to the window's usage counts.

        Args:
            indices: the batch's codes.
            counts: their histogram on this process, if the caller has it
                (``bincount`` of ``indices``; it is not modified).
        """
        if counts is None:
            counts = torch.bincount(indices.flatten(), minlength=self.codebook_size)
        else:
            counts = counts.clone()
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(counts)
        self.usage += counts
        self.window_step += 1

    def _dead_codes(self) -> Tensor:
        """(K,) bool: codes whose count over the window is below
        ``reset_threshold`` times the most-used code's count."""
        return self.usage < self.reset_threshold * self.usage.max()

    @torch.no_grad()
    def _clear_window_if_due(self) -> Tensor:
        """Starts a new usage window if the current one is complete; returns
        whether it was (a device bool, no host synchronisation)."""
        due = self.window_step >= self.reset_window
        keep = (~due).to(self.usage.dtype)
        self.usage.mul_(keep)
        self.window_step.mul_(keep)
        return due

    def _check(self, z_e: Tensor) -> None:
        if z_e.dim() != 4 or z_e.shape[1] != self.codebook_dim:
            raise ValueError(
                f"expected latents of shape (B, {self.codebook_dim}, H, W), "
                f"got {tuple(z_e.shape)}"
            )


def from_rank0(tensor: Tensor) -> Tensor:
    """Rank 0's ``tensor`` on every rank under ``torch.distributed`` (in place)."""
    if dist.is_available() and dist.is_initialized():
        dist.broadcast(tensor, src=0)
    return tensor
