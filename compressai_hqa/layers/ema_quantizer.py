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
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F

from torch import Tensor

from compressai_hqa.layers.quantizer import QuantizerOutput, VectorQuantizer

__all__ = ["EMAQuantizer"]


class EMAQuantizer(VectorQuantizer):
    """Nearest-code quantiser whose codebook is an exponential moving average.

    The moving averages start as if every code had been chosen once at its
    initial position (``N_k = 1``, ``m_k = e_k``), so a code no batch chooses
    stays where it is instead of being divided by ``eps`` at the first step
    (once its count has decayed to the order of ``eps`` the smoothing draws it
    toward the origin, as in any Laplace-smoothed EMA codebook). Under
    ``torch.distributed`` the counts and sums are all-reduced, so every rank
    makes the same update. The posterior is a point mass: ``quantize(...,
    "sample")`` returns the nearest code too.

    Args:
        codebook_size: number of codes K.
        codebook_dim: code dimension D.
        decay: gamma of the moving averages.
        eps: Laplace smoothing of the counts.
        reset_window: batches over which code usage is counted (for reports;
            this quantiser never resets codes).
    """

    cluster_size: Tensor
    code_sum: Tensor

    def __init__(
        self,
        codebook_size: int,
        codebook_dim: int,
        decay: float = 0.99,
        eps: float = 1e-5,
        reset_window: int = 20,
    ) -> None:
        super().__init__(codebook_size, codebook_dim, reset_window)
        if not 0.0 < decay < 1.0:
            raise ValueError(f"decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.eps = eps
        codebook = torch.randn(codebook_size, codebook_dim)
        self.register_buffer("codebook", codebook)
        self.register_buffer("cluster_size", torch.ones(codebook_size))
        self.register_buffer("code_sum", codebook.clone())
        self._usage_buffers()

    def quantize(
        self,
        z_e: Tensor,
        mode: str = "argmin",
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """The nearest codes (B, H, W) in every mode (the posterior is a point
        mass)."""
        return super().quantize(z_e, "argmin")

    def forward(self, z_e: Tensor) -> QuantizerOutput:
        """Nearest codes with a straight-through gradient; in training mode also
        updates the codebook's moving averages (after taking the codes).

        ``commit`` is VQ-VAE's commitment loss, the mean over elements of
        ``(z_e - sg(e_k))^2``; ``kl`` is zero (a point-mass posterior carries
        no entropy term).
        """
        indices = self.logits(z_e).argmax(-1)
        codes = self.embed(indices).to(z_e.dtype)
        commit = F.mse_loss(z_e.float(), codes.float())
        z_q = z_e + (codes - z_e).detach()
        with torch.no_grad():
            counts = torch.bincount(indices.flatten(), minlength=self.codebook_size)
            freqs = counts.float() / indices.numel()
            perplexity = torch.exp(-(freqs * freqs.clamp_min(1e-12).log()).sum())
        if self.training:
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
