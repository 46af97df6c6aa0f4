"""The probabilistic vector quantiser of HQA (paper section 5.1, Appendix B-C.4).

The posterior over K codes is ``q(k|z) = softmax_k(-||z - e_k||^2)``. Training
feeds the decoder a relaxed Gumbel-softmax sample ``y @ E`` and adds two terms to
the loss: the KL divergence from ``q`` to the uniform prior (the negative entropy
up to log K) and the probabilistic commitment ``E_q ||z - e_k||^2``. Inference
quantises as a :class:`~compressai_hqa.decoding.Decoding` says: by argmin (the
default) or by sampling ``q``.

Dead codes are revived during training by one of two rules
(:data:`~compressai_hqa.layers.training_settings.RESET_RULES`):
``"paper"`` moves the least-used code next to the most-used one (paper C.4);
``"data"`` (a deviation, see :meth:`ProbabilisticQuantizer._end_window`) re-seeds
every dead code at an encoder output of the current batch.
"""

from __future__ import annotations

import math

from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from torch import Tensor

from compressai_hqa.decoding import Decoding
from compressai_hqa.layers.gumbel import relaxed_one_hot
from compressai_hqa.layers.training_settings import (
    LAYER_TRAINING_DEFAULTS as _DEFAULTS,
)
from compressai_hqa.layers.training_settings import LayerTraining

__all__ = [
    "ProbabilisticQuantizer",
    "QuantizerOutput",
    "VectorQuantizer",
]

#: Candidate encoder outputs considered by the data-driven reset (a random
#: subsample of the batch positions; more than enough for K <= 4096 codes).
_RESET_CANDIDATES = 4096


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

    Subclasses create :attr:`codebook` (a parameter or a buffer, saved as
    ``codebook``), set :attr:`reset_threshold` and implement ``forward``
    (returning :class:`QuantizerOutput`); their training settings change only
    through :meth:`configure_training`.
    """

    usage: Tensor
    window_step: Tensor
    codebook: Tensor
    reset_threshold: float

    def __init__(
        self, codebook_size: int, codebook_dim: int, reset_window: int
    ) -> None:
        super().__init__()
        self.codebook_size = codebook_size
        self.codebook_dim = codebook_dim
        self.reset_window = reset_window

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


class ProbabilisticQuantizer(VectorQuantizer):
    """Codebook with the stochastic posterior of HQA.

    The Gumbel temperature and the code-usage window are buffers, so they are
    saved in the state dict and a resumed run continues exactly. Code resetting
    (paper C.4) is on by default and runs only in training mode;
    :meth:`set_temperature` and :meth:`set_code_reset` follow a schedule.

    Args:
        codebook_size: number of codes K.
        codebook_dim: code dimension D.
        temperature: initial Gumbel-softmax temperature.
        reset_window: batches over which code usage is counted.
        reset_threshold: a code is dead when its count over a window is below
            this fraction of the most-used code's count.
        reset_noise: standard deviation of the noise added to a reset code
            (``reset_rule="paper"``).
        reset_rule: one of
            :data:`~compressai_hqa.layers.training_settings.RESET_RULES`.
        reset_min_distance: ``reset_rule="data"`` seeds a code only at a batch
            point at least this squared distance from every code.

    The defaults are :class:`~compressai_hqa.layers.LayerTraining`'s;
    :meth:`configure_training` changes the settings.
    """

    temperature: Tensor
    usage: Tensor
    window_step: Tensor
    reset_mask: Tensor

    def __init__(
        self,
        codebook_size: int,
        codebook_dim: int,
        temperature: float = _DEFAULTS.temperature,
        reset_window: int = _DEFAULTS.reset_window,
        reset_threshold: float = _DEFAULTS.reset_threshold,
        reset_noise: float = _DEFAULTS.reset_noise,
        reset_rule: str = _DEFAULTS.reset_rule,
        reset_min_distance: float = _DEFAULTS.reset_min_distance,
    ) -> None:
        super().__init__(codebook_size, codebook_dim, reset_window)
        self.configure_training(
            LayerTraining(
                reset_window=reset_window,
                reset_threshold=reset_threshold,
                reset_noise=reset_noise,
                reset_rule=reset_rule,
                reset_min_distance=reset_min_distance,
            )
        )
        self.code_reset = True
        # State-dict names (codebook, temperature, usage, window_step) are part
        # of the checkpoint format: keep them.
        self.codebook = nn.Parameter(torch.randn(codebook_size, codebook_dim))
        self.register_buffer("temperature", torch.tensor(float(temperature)))
        self._usage_buffers()
        # The codes moved by the last reset (e.g. to clear their optimiser moments).
        self.register_buffer(
            "reset_mask",
            torch.zeros(codebook_size, dtype=torch.bool),
            persistent=False,
        )

    def configure_training(self, settings: LayerTraining) -> None:
        """Sets the code-reset window, threshold, rule, noise and minimum
        distance of the next training steps (the temperature follows
        :meth:`set_temperature`)."""
        super().configure_training(settings)
        self.reset_noise = settings.reset_noise
        self.reset_rule = settings.reset_rule
        self.reset_min_distance = settings.reset_min_distance

    # ---------------------------------------------------------- schedule
    def set_temperature(self, temperature: float) -> None:
        """Sets the Gumbel-softmax temperature of training (in place, a buffer)."""
        self.temperature.fill_(temperature)

    def set_code_reset(self, enabled: bool) -> None:
        """Turns code resetting on or off (it only ever runs in training mode)."""
        self.code_reset = bool(enabled)

    # --------------------------------------------------------------- training
    def forward(self, z_e: Tensor) -> QuantizerOutput:
        """Quantises ``z_e``: relaxed sample in training, argmin codes in eval.

        In training mode also counts code usage. When a window of
        ``reset_window`` batches is complete, the next training call first
        resets a dead code (if :attr:`code_reset` is on), before the codebook
        enters the autograd graph, then starts a new window.
        """
        if self.training:
            self._end_window(z_e)
        logits = self.logits(z_e)
        # With s = sum_k q_k logits_k: sum_k q_k d_k = -s and
        # sum_k q_k log q_k = s - logsumexp(logits), so both terms share one pass.
        lse = logits.logsumexp(-1, keepdim=True)
        q = (logits - lse).exp()
        s = (q * logits).sum(-1)
        commit = -s.mean()
        kl = (s - lse.squeeze(-1)).mean() + math.log(self.codebook_size)
        indices = logits.argmax(-1)
        with torch.no_grad():
            avg_q = q.reshape(-1, self.codebook_size).mean(0)
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
    def _end_window(self, z_e: Tensor) -> None:
        """If a window is complete: reset dead codes, then clear the counts.

        A code is dead when its count over the window is below
        ``reset_threshold`` times the most-used code's count.

        * ``"paper"`` (paper C.4, the original code): only the least-used code,
          if dead, moves to the most-used code plus N(0, reset_noise^2) noise.
          Runs entirely on the device (no host synchronisation).
        * ``"data"`` (a deviation): every dead code is re-seeded at an encoder
          output ``z_e`` of the current batch, chosen as k-means++ chooses its
          seeds (see :meth:`_seeds`). A copy of a used code takes all or none of
          that code's points, which lie far from it, so it rarely comes alive; a
          batch point far from every code is a centre of real data. When the
          seeds would not raise the number of codes the batch uses (early in
          training the encoder's outputs lie within a fraction of a unit of
          each other), the window falls back to the paper's move, whose copy
          shares the posterior of the most-used code and so lets gradients
          separate the two.

        Under ``torch.distributed`` the noise or the new codes come from rank 0
        and the counts are all-reduced, so every rank makes the same change.
        """
        due = self.window_step >= self.reset_window
        self.reset_mask.zero_()
        if self.code_reset:
            if self.reset_rule == "paper":
                self._reset_paper(due)
            elif bool(due) and not self._reset_at_batch_points(z_e):
                self._reset_paper(due)  # one host read a step (graph break)
        self._clear_window_if_due()

    def _reset_paper(self, due: Tensor) -> None:
        """Moves the least-used code, if dead, next to the most-used one."""
        # Masks and torch.where rather than tensor indexing: no host
        # synchronisation, and torch.compile keeps it in one graph.
        most_count, most = self.usage.max(0)
        least_count, least = self.usage.min(0)
        dead = due & (least_count < self.reset_threshold * most_count)
        noise = _broadcast(torch.randn(self.codebook_dim, device=self.codebook.device))
        noise = (noise * self.reset_noise).to(self.codebook.dtype)
        moved = self.codebook.index_select(0, most.view(1)) + noise
        self.reset_mask.copy_(F.one_hot(least, self.codebook_size).bool() & dead)
        self._replace(moved.expand_as(self.codebook))

    def _reset_at_batch_points(self, z_e: Tensor) -> bool:
        """Re-seeds dead codes at batch points (see :meth:`_seeds`).

        Returns False, changing nothing, when the seeds would not raise the
        number of codes the batch's points use: early in training the encoder's
        outputs lie within a fraction of a unit of each other, so a code seeded
        among them would take every point (a one-hot posterior carries no
        information and passes no gradient), and the paper's move is better.
        """
        dead = self._dead_codes()
        seeds, points = self._seeds(z_e, int(dead.sum()))
        order = dead.long().cumsum(0) - 1  # the i-th dead code takes seed i
        mask = dead & (order < len(seeds))
        if len(seeds):
            seeds = seeds[order.clamp(0, len(seeds) - 1)].to(self.codebook.dtype)
            codebook = torch.where(mask.unsqueeze(1), seeds, self.codebook)
            grows = _codes_in_use(points, codebook) > _codes_in_use(
                points, self.codebook
            )
        else:
            codebook, grows = self.codebook.detach().clone(), False
        # under torch.distributed, rank 0 decides and sends its seeds (every rank
        # takes part in the same collectives, whatever its own batch gave)
        if not _broadcast(torch.tensor(grows, device=mask.device)).item():
            return False
        self.reset_mask.copy_(_broadcast(mask.to(torch.uint8)).bool())
        self._replace(_broadcast(codebook))
        return True

    def _replace(self, codes: Tensor) -> None:
        """Sets the codes of :attr:`reset_mask` to the same rows of ``codes``."""
        mask = self.reset_mask.unsqueeze(1)
        self.codebook.copy_(torch.where(mask, codes, self.codebook))

    @torch.compiler.disable
    def _seeds(self, z_e: Tensor, count: int) -> tuple[Tensor, Tensor]:
        """Up to ``count`` batch points to re-seed dead codes at, k-means++ style.

        Seeds are drawn one at a time among the batch positions, each with
        probability proportional to its squared distance ``d`` to the nearest
        code (the current codes and the seeds drawn before it), among the
        positions with ``d >= reset_min_distance``: a code closer than that to
        another would share its points (the posterior is softmax(-d)), so the
        draw stops when no position is that far from every code. Candidates are
        a uniform random subsample (without replacement) of at most
        ``_RESET_CANDIDATES`` positions, so the cost does not grow with the batch.
        Not a strided one: positions are flattened row by row, so a stride that
        is a multiple of the latent width (8 at MNIST layer 2: 32,768 positions
        over 4,096) sees one column of the image only, its background edge.

        Returns:
            the seeds (n <= count, D) and the candidate points (N, D).
        """
        flat = z_e.detach().permute(0, 2, 3, 1).reshape(-1, self.codebook_dim).float()
        if flat.shape[0] > _RESET_CANDIDATES:
            pick = torch.randperm(flat.shape[0], device=flat.device)
            flat = flat[pick[:_RESET_CANDIDATES]]
        d = (-self._neg_distances(flat)).min(1).values
        seeds: list[Tensor] = []
        for _ in range(count):
            weights = torch.where(d >= self.reset_min_distance, d, 0.0)
            if not bool(weights.any()):
                break
            seed = flat[torch.multinomial(weights, 1)]
            seeds.append(seed)
            d = torch.minimum(d, (flat - seed).square().sum(1))
        empty = flat.new_zeros(0, self.codebook_dim)
        return torch.cat(seeds) if seeds else empty, flat

    def extra_repr(self) -> str:
        return (
            f"codebook_size={self.codebook_size}, codebook_dim={self.codebook_dim}, "
            f"reset_rule={self.reset_rule!r}"
        )


def _codes_in_use(points: Tensor, codebook: Tensor) -> int:
    """How many codes of ``codebook`` (K, D) are the nearest of some ``points``."""
    return torch.cdist(points, codebook.float()).argmin(1).unique().numel()


def _broadcast(tensor: Tensor) -> Tensor:
    """Rank 0's ``tensor`` on every rank under ``torch.distributed`` (in place)."""
    if dist.is_available() and dist.is_initialized():
        dist.broadcast(tensor, src=0)
    return tensor
