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

import torch
import torch.nn as nn
import torch.nn.functional as F

from torch import Tensor

from compressai_hqa.layers.gumbel import relaxed_one_hot
from compressai_hqa.layers.training_settings import (
    LAYER_TRAINING_DEFAULTS as _DEFAULTS,
)
from compressai_hqa.layers.training_settings import LayerTraining
from compressai_hqa.layers.vector_quantizer import (
    QuantizerOutput,
    VectorQuantizer,
    from_rank0,
)

__all__ = ["ProbabilisticQuantizer"]

#: Candidate encoder outputs considered by the data-driven reset (a random
#: subsample of the batch positions; more than enough for K <= 4096 codes).
_RESET_CANDIDATES = 4096


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
        settings = LayerTraining(
            reset_window=reset_window,
            reset_threshold=reset_threshold,
            reset_noise=reset_noise,
            reset_rule=reset_rule,
            reset_min_distance=reset_min_distance,
        )
        super().__init__(codebook_size, codebook_dim, settings)
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
        noise = from_rank0(torch.randn(self.codebook_dim, device=self.codebook.device))
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
        if not from_rank0(torch.tensor(grows, device=mask.device)).item():
            return False
        self.reset_mask.copy_(from_rank0(mask.to(torch.uint8)).bool())
        self._replace(from_rank0(codebook))
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
