"""VQ-VAE's deterministic quantiser with an EMA codebook (the baselines of Table 3).

A. van den Oord, O. Vinyals, K. Kavukcuoglu, `"Neural Discrete Representation
Learning" <https://arxiv.org/abs/1711.00937>`_, NeurIPS 2017 (Appendix A.1): each
position takes its nearest code, the decoder sees it through a straight-through
gradient, the encoder is pulled to it by the commitment loss, and the codebook is
not learnt by gradient but follows online k-means as exponential moving averages:

    N_k <- gamma N_k + (1 - gamma) n_k         (n_k: positions choosing code k)
    m_k <- gamma m_k + (1 - gamma) s_k         (s_k: the sum of their z_e)
    e_k  = m_k / N~_k,   N~_k = (N_k + eps) / (sum_j N_j + K eps) * sum_j N_j

HAMs (Fauw et al. 2019) and the flat VQ-VAEs of the HQA paper's Tables 12 and 14
use it.

The papers do not say how the codes start. Here the first training batch seeds
them: each code is the encoder output of a random position of that batch (the
data initialisation of vector-quantize-pytorch's ``kmeans_init``, without its
k-means iterations). Codes drawn at N(0, 1) instead lie far from a fresh
encoder's outputs, which sit close to the origin, so every position takes the
code nearest the origin and the moving averages move that one alone (the flat
VQ-VAEs of ``benchmarks/table3.py`` ended with 1 to 4 codes in use).

Seeding alone is not enough: within a hundred steps of batch 128 the flat 8-bit
VQ-VAE again sent every image to one code. Dead-code revival is therefore a
switch (:meth:`EMAQuantizer.set_code_reset`, scheduled by the recipe's
``reset_fraction`` like the Gumbel quantiser's resets): at the end of each usage
window every code used less than ``reset_threshold`` of the most used one is
re-seeded at a random encoder output of the batch, every position equally
likely (as Jukebox's and vector-quantize-pytorch's ``threshold_ema_dead_code``
do). It is the recipes' ``reset_rule="data"`` for EMA codebooks, simpler than
:class:`~compressai_hqa.layers.ProbabilisticQuantizer`'s: no distance
weighting, no minimum distance, no fallback to the paper's move. It is off
unless switched on.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F

from torch import Tensor

from compressai_hqa.decoding import Decoding
from compressai_hqa.layers.training_settings import (
    LAYER_TRAINING_DEFAULTS as _DEFAULTS,
)
from compressai_hqa.layers.training_settings import LayerTraining
from compressai_hqa.layers.vector_quantizer import (
    QuantizerOutput,
    VectorQuantizer,
    from_rank0,
)

__all__ = ["EMAQuantizer"]


class EMAQuantizer(VectorQuantizer):
    """Nearest-code quantiser whose codebook is an exponential moving average.

    The moving averages start as if every code had been chosen once at its
    initial position (``N_k = 1``, ``m_k = e_k``), so a code no batch chooses
    stays where it is instead of being divided by ``eps`` at the first step
    (once its count has decayed to the order of ``eps`` the smoothing draws it
    toward the origin, as in any Laplace-smoothed EMA codebook). Under
    ``torch.distributed`` the counts and sums are all-reduced, so every rank
    makes the same update. The posterior is a point mass: :meth:`quantize`
    takes the nearest code, and any other decoding mode is an error.

    Args:
        codebook_size: number of codes K.
        codebook_dim: code dimension D.
        decay: gamma of the moving averages.
        eps: Laplace smoothing of the counts.
        reset_window: batches over which code usage is counted.
        reset_threshold: with code resetting on, a code used less than this
            fraction of the most used code over a window is re-seeded.

    The defaults are :class:`~compressai_hqa.layers.LayerTraining`'s;
    :meth:`configure_training` changes the settings.
    """

    cluster_size: Tensor
    code_sum: Tensor

    def __init__(
        self,
        codebook_size: int,
        codebook_dim: int,
        decay: float = _DEFAULTS.ema_decay,
        eps: float = 1e-5,
        reset_window: int = _DEFAULTS.reset_window,
        reset_threshold: float = _DEFAULTS.reset_threshold,
    ) -> None:
        settings = LayerTraining(
            reset_window=reset_window, reset_threshold=reset_threshold, ema_decay=decay
        )
        super().__init__(codebook_size, codebook_dim, settings)
        self.eps = eps
        self.code_reset = False
        codebook = torch.randn(codebook_size, codebook_dim)
        self.register_buffer("codebook", codebook)
        self.register_buffer("cluster_size", torch.ones(codebook_size))
        self.register_buffer("code_sum", codebook.clone())
        # whether the codes were seeded from data
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool))
        self._usage_buffers()

    def configure_training(self, settings: LayerTraining) -> None:
        """Sets the usage window, the dead-code threshold and the decay of the
        moving averages of the next training steps."""
        super().configure_training(settings)
        self.decay = settings.ema_decay

    def quantize(self, z_e: Tensor, decoding: Decoding | str = "argmin") -> Tensor:
        """The nearest codes (B, H, W).

        Raises:
            ValueError: ``decoding`` is not argmin: the posterior is a point
                mass, so there is nothing to draw or average.
        """
        decoding = Decoding.of(decoding)
        if decoding.mode != "argmin":
            raise ValueError(
                "an EMA codebook's posterior is a point mass: it decodes by "
                f"'argmin' only, not {decoding.mode!r}"
            )
        return super().quantize(z_e, decoding)

    def forward(self, z_e: Tensor) -> QuantizerOutput:
        """Nearest codes with a straight-through gradient; in training mode also
        updates the codebook's moving averages (after taking the codes).

        ``commit`` is VQ-VAE's commitment loss, the mean over elements of
        ``(z_e - sg(e_k))^2``; ``kl`` is zero (a point-mass posterior carries
        no entropy term).
        """
        if self.training and not self.initialized:
            self.init_from_data(z_e)
        indices = self.logits(z_e).argmax(-1)
        codes = self.embed(indices).to(z_e.dtype)
        commit = F.mse_loss(z_e.float(), codes.float())
        z_q = z_e + (codes - z_e).detach()
        with torch.no_grad():
            counts = torch.bincount(indices.flatten(), minlength=self.codebook_size)
            freqs = counts.float() / indices.numel()
            perplexity = torch.exp(-(freqs * freqs.clamp_min(1e-12).log()).sum())
        if self.training:
            if self.code_reset:
                self._revive_dead_codes(z_e)
            self._clear_window_if_due()
            self._count(indices, counts)
            self._update(z_e, indices, counts)
        return QuantizerOutput(
            z_q=z_q,
            indices=indices,
            kl=commit.new_zeros(()),
            commit=commit,
            perplexity=perplexity,
        )

    @torch.no_grad()
    def init_from_data(self, z_e: Tensor) -> None:
        """Seeds every code at the encoder output of a random position of ``z_e``.

        Positions are drawn without replacement when the batch has at least K of
        them, else with replacement (repeated codes then part as the moving
        averages move them). The moving averages restart from the new codes
        (``N_k = 1``, ``m_k = e_k``). Under ``torch.distributed`` rank 0's draw
        is broadcast, so every rank holds the same codes.

        Args:
            z_e: (B, D, H, W) encoder outputs of a training batch.
        """
        codebook = self._batch_points(z_e, self.codebook_size)
        self.codebook.copy_(codebook)
        self.code_sum.copy_(codebook)
        self.cluster_size.fill_(1.0)
        self.initialized.fill_(True)

    def set_code_reset(self, enabled: bool) -> None:
        """Turns dead-code revival on or off (it only ever runs in training
        mode)."""
        self.code_reset = bool(enabled)

    @torch.no_grad()
    def _revive_dead_codes(self, z_e: Tensor) -> None:
        """At the end of a usage window, re-seeds every code used less than
        ``reset_threshold`` of the most used one at a random encoder output of the
        batch, its moving averages restarted there (``N_k = 1``, ``m_k = e_k``).
        Under ``torch.distributed`` rank 0's draw is broadcast (the usage counts
        are the same on every rank)."""
        if not bool(self.window_step >= self.reset_window):
            return
        dead = self._dead_codes()
        count = int(dead.sum())
        if count == 0:
            return
        new = self._batch_points(z_e, count)
        self.codebook[dead] = new
        self.code_sum[dead] = new
        self.cluster_size[dead] = 1.0

    def _batch_points(self, z_e: Tensor, count: int) -> Tensor:
        """``count`` encoder outputs (count, D) at random positions of ``z_e``,
        drawn without replacement when there are enough positions; rank 0's
        draw under ``torch.distributed``."""
        flat = z_e.detach().permute(0, 2, 3, 1).reshape(-1, self.codebook_dim)
        n = flat.shape[0]
        if n >= count:
            rows = torch.randperm(n, device=flat.device)[:count]
        else:
            rows = torch.randint(n, (count,), device=flat.device)
        return from_rank0(flat[rows].float().contiguous())

    @torch.no_grad()
    def _update(self, z_e: Tensor, indices: Tensor, counts: Tensor) -> None:
        """One step of the moving averages and the codebook they define.

        Args:
            z_e: the batch's encoder outputs.
            indices: their nearest codes.
            counts: the histogram of ``indices`` on this process.
        """
        flat = z_e.detach().permute(0, 2, 3, 1).reshape(-1, self.codebook_dim).float()
        counts = counts.float()
        sums = torch.zeros_like(self.code_sum).index_add_(0, indices.flatten(), flat)
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(counts)
            dist.all_reduce(sums)
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.code_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        total = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.eps) / (
            total + self.codebook_size * self.eps
        )
        self.codebook.copy_(self.code_sum / (smoothed * total).unsqueeze(1))

    def extra_repr(self) -> str:
        return (
            f"codebook_size={self.codebook_size}, codebook_dim={self.codebook_dim}, "
            f"decay={self.decay}"
        )
