"""The probabilistic vector quantiser of HQA (paper section 5.1, Appendix B-C.4).

The posterior over K codes is ``q(k|z) = softmax_k(-||z - e_k||^2)``. Training
feeds the decoder a relaxed Gumbel-softmax sample ``y @ E`` and adds two terms to
the loss: the KL divergence from ``q`` to the uniform prior (the negative entropy
up to log K) and the probabilistic commitment ``E_q ||z - e_k||^2``. Inference
quantises by argmin (the default) or by sampling ``q`` with a caller's generator.
Dead codes are moved next to the most-used code during training.
"""

from __future__ import annotations

import math

from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from torch import Tensor

__all__ = [
    "ProbabilisticQuantizer",
    "QuantizerOutput",
    "gumbel_noise",
    "relaxed_one_hot",
    "sample_categorical",
]


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


class ProbabilisticQuantizer(nn.Module):
    """Codebook with the stochastic posterior of HQA.

    The Gumbel temperature and the code-usage window are buffers, so they are
    saved in the state dict and a resumed run continues exactly. Code resetting
    (paper C.4) is on by default and runs only in training mode; the trainer
    switches :attr:`code_reset` off for the last quarter of the steps.

    Args:
        num_codes: codebook size K.
        dim: code dimension D.
        temperature: initial Gumbel-softmax temperature.
        reset_window: batches over which code usage is counted.
        reset_threshold: the least-used code is dead when its count is below
            this fraction of the most-used code's count.
        reset_noise: standard deviation of the noise added to a reset code.
    """

    temperature: Tensor
    usage: Tensor
    window_step: Tensor
    last_reset: Tensor

    def __init__(
        self,
        num_codes: int,
        dim: int,
        temperature: float = 1.0,
        reset_window: int = 20,
        reset_threshold: float = 0.03,
        reset_noise: float = 0.01,
    ) -> None:
        super().__init__()
        self.num_codes = num_codes
        self.dim = dim
        self.reset_window = reset_window
        self.reset_threshold = reset_threshold
        self.reset_noise = reset_noise
        self.code_reset = True
        self.codebook = nn.Parameter(torch.randn(num_codes, dim))
        self.register_buffer("temperature", torch.tensor(float(temperature)))
        self.register_buffer("usage", torch.zeros(num_codes, dtype=torch.int64))
        self.register_buffer("window_step", torch.zeros((), dtype=torch.int64))
        # Index of the code moved by the last reset (-1: none); lets the trainer
        # clear that code's optimiser moments.
        self.register_buffer(
            "last_reset", torch.full((), -1, dtype=torch.int64), persistent=False
        )

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
        flat = z_e.permute(0, 2, 3, 1).reshape(-1, self.dim)
        return self._neg_distances(flat).view(b, h, w, self.num_codes)

    def posterior(self, z_e: Tensor) -> Tensor:
        """q(k | z_e) as (B, H, W, K)."""
        return self.logits(z_e).softmax(-1)

    # -------------------------------------------------------------- inference
    def quantize(
        self,
        z_e: Tensor,
        mode: str = "argmin",
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Hard code indices (B, H, W).

        Args:
            z_e: continuous latents (B, D, H, W).
            mode: ``"argmin"`` (nearest code, deterministic) or ``"sample"``
                (a draw from q(k|z_e) using ``generator``).
            generator: random source for ``"sample"``; the default generator of
                the latents' device when omitted.
        """
        logits = self.logits(z_e)
        if mode == "argmin":
            return logits.argmax(-1)
        if mode == "sample":
            return sample_categorical(logits, generator)
        raise ValueError(f"mode must be 'argmin' or 'sample', got {mode!r}")

    def embed(self, indices: Tensor) -> Tensor:
        """Code vectors (B, D, H, W) for indices (B, H, W)."""
        if indices.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"indices must be an integer tensor, got {indices.dtype}")
        if indices.numel() and (indices.min() < 0 or indices.max() >= self.num_codes):
            raise ValueError(f"indices must be in [0, {self.num_codes})")
        return F.embedding(indices.long(), self.codebook).permute(0, 3, 1, 2)

    # --------------------------------------------------------------- training
    def forward(self, z_e: Tensor) -> QuantizerOutput:
        """Quantises ``z_e``: relaxed sample in training, argmin codes in eval.

        In training mode also counts code usage. When a window of
        ``reset_window`` batches is complete, the next training call first
        resets a dead code (if :attr:`code_reset` is on), before the codebook
        enters the autograd graph, then starts a new window.
        """
        if self.training:
            self._end_window()
        logits = self.logits(z_e)
        # With s = sum_k q_k logits_k: sum_k q_k d_k = -s and
        # sum_k q_k log q_k = s - logsumexp(logits), so both terms share one pass.
        lse = logits.logsumexp(-1, keepdim=True)
        q = (logits - lse).exp()
        s = (q * logits).sum(-1)
        commit = -s.mean()
        kl = (s - lse.squeeze(-1)).mean() + math.log(self.num_codes)
        indices = logits.argmax(-1)
        with torch.no_grad():
            avg_q = q.reshape(-1, self.num_codes).mean(0)
            perplexity = torch.exp(-(avg_q * avg_q.clamp_min(1e-12).log()).sum())

        if self.training:
            y = relaxed_one_hot(logits, self.temperature)
            z_q = (y @ self.codebook.to(y.dtype)).permute(0, 3, 1, 2)
            self._count(indices)
        else:
            z_q = self.embed(indices)
        return QuantizerOutput(
            z_q=z_q.to(z_e.dtype),
            indices=indices,
            kl=kl,
            commit=commit,
            perplexity=perplexity,
        )

    @torch.no_grad()
    def _count(self, indices: Tensor) -> None:
        """Adds the batch's hard code assignments to the window's usage counts."""
        counts = torch.bincount(indices.flatten(), minlength=self.num_codes)
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(counts)
        self.usage += counts
        self.window_step += 1

    @torch.no_grad()
    def _end_window(self) -> None:
        """If a window is complete: reset a dead code (paper C.4), clear the counts.

        The least-used code is dead when its count is below ``reset_threshold``
        times the most-used code's; it moves to the most-used code plus
        N(0, reset_noise^2) noise. Runs entirely on the device (no host
        synchronisation); under ``torch.distributed`` the noise comes from rank 0.
        """
        due = self.window_step >= self.reset_window
        self.last_reset.fill_(-1)
        if self.code_reset:
            # min/max and index_select rather than tensor indexing: no host
            # synchronisation, and torch.compile keeps it in one graph.
            least_count, least = self.usage.min(0)
            most_count, most = self.usage.max(0)
            dead = due & (least_count < self.reset_threshold * most_count)
            noise = torch.randn(self.dim, device=self.codebook.device)
            if dist.is_available() and dist.is_initialized():
                dist.broadcast(noise, src=0)
            noise = (noise * self.reset_noise).to(self.codebook.dtype)
            moved = self.codebook.index_select(0, most.view(1)) + noise
            kept = self.codebook.index_select(0, least.view(1))
            self.codebook.index_copy_(0, least.view(1), torch.where(dead, moved, kept))
            self.last_reset.copy_(torch.where(dead, least, self.last_reset))
        keep = (~due).to(self.usage.dtype)
        self.usage.mul_(keep)
        self.window_step.mul_(keep)

    def _check(self, z_e: Tensor) -> None:
        if z_e.dim() != 4 or z_e.shape[1] != self.dim:
            raise ValueError(
                f"expected latents of shape (B, {self.dim}, H, W), "
                f"got {tuple(z_e.shape)}"
            )

    def extra_repr(self) -> str:
        return f"num_codes={self.num_codes}, dim={self.dim}"


def gumbel_noise(shape: torch.Size, device: torch.device) -> Tensor:
    """Standard Gumbel noise -log(-log U), U ~ Uniform[0, 1), in fp32.

    Computed in place from uniform draws: on CPU this is about four times faster
    than ``Tensor.exponential_`` (what ``F.gumbel_softmax`` uses). U = 0 gives
    -inf, the correct limit (that code gets zero weight).
    """
    return torch.empty(shape, device=device).uniform_().log_().neg_().log_().neg_()


def relaxed_one_hot(logits: Tensor, temperature: Tensor | float) -> Tensor:
    """A reparameterised Gumbel-softmax (concrete) sample, softmax((l + g) / T).

    References: E. Jang, S. Gu, B. Poole, "Categorical reparameterization with
    Gumbel-softmax", ICLR 2017; C. Maddison, A. Mnih, Y. W. Teh, "The concrete
    distribution", ICLR 2017.
    """
    noise = gumbel_noise(logits.shape, logits.device)
    return ((logits + noise) / temperature).softmax(-1)


def sample_categorical(
    logits: Tensor, generator: torch.Generator | None = None
) -> Tensor:
    """Draws one index per row of ``logits`` (..., K) by the Gumbel-max trick.

    The uniform noise is drawn on ``generator``'s device (CPU by default), so a
    seeded CPU generator gives the same codes on every device.
    """
    device = generator.device if generator is not None else logits.device
    u = torch.rand(
        logits.shape, generator=generator, device=device, dtype=torch.float32
    )
    gumbel = -torch.log(-torch.log(u.clamp(1e-20, 1.0 - 1e-7)))
    return (logits.float() + gumbel.to(logits.device)).argmax(-1)
