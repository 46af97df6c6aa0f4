"""What an HQA stack's codes carry: codebook usage, posterior entropy, diversity.

* **Usage**: how many of the K top-layer codes the argmin codes of a dataset use,
  how many of those are distinct (near-copies, as the paper's reset makes, count
  once), and the entropy (bits) of their empirical distribution, against the
  ``log2 K`` bits each costs in the stream.
* **Posterior entropy**: the mean entropy (bits) of q(k | z_e) over the top
  layer's positions: near 0 when the posterior is one-hot, so that the paper's
  stochastic decoder has nothing to sample.
* **Decode spread**: the per-pixel standard deviation across stochastic decodes
  of the same transmitted codes (paper Figure 6), averaged over pixels and images.
"""

from __future__ import annotations

import math

from dataclasses import asdict, dataclass

import torch

from torch import Tensor

from compressai_hqa.decoding import SEEDED_SAMPLING, Decoding
from compressai_hqa.models import HQA

__all__ = [
    "COPY_RADIUS2",
    "CodeStatistics",
    "code_statistics",
    "decode_spread",
    "distinct_codes",
    "entropy_bits",
]

#: Codes closer than this squared distance count as copies of one another. The
#: paper's reset places a copy at N(0, 0.01^2) noise from a code: a squared
#: distance of about 2 * D * 1e-4 (0.013 at D = 64).
COPY_RADIUS2 = 0.1


def entropy_bits(counts: Tensor) -> float:
    """Entropy (bits) of the empirical distribution of code ``counts`` (K,)."""
    p = counts[counts > 0].double() / counts.sum()
    return float(-(p * p.log2()).sum()) + 0.0  # + 0.0: one code is 0, not -0


def distinct_codes(codes: Tensor, radius2: float = COPY_RADIUS2) -> int:
    """How many distinct codes are among ``codes`` (N, D): codes closer than
    ``radius2`` (squared distance), directly or through a chain of such codes,
    count as one."""
    codes = codes.detach().float()
    near = torch.cdist(codes, codes).square() < radius2
    labels = torch.arange(len(codes), device=codes.device)
    while True:  # each code takes the smallest label of its neighbours
        fewer = torch.where(near, labels, len(codes)).min(1).values
        if torch.equal(fewer, labels):
            return int(labels.unique().numel())
        labels = fewer


@dataclass(frozen=True)
class CodeStatistics:
    """Top-layer code statistics of a stack over a dataset.

    Attributes:
        codebook_size: K.
        codes_used: codes that are the argmin of at least one position.
        distinct_codes_used: the same, counting near-copies (squared distance
            below :data:`COPY_RADIUS2`) once; see :func:`distinct_codes`.
        entropy_bits: entropy of the empirical distribution of the argmin codes.
        bits_per_code: ``log2 K``, the cost of one code in the stream.
        posterior_entropy_bits: mean entropy of q(k | z_e) per position.
    """

    codebook_size: int
    codes_used: int
    distinct_codes_used: int
    entropy_bits: float
    bits_per_code: float
    posterior_entropy_bits: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@torch.no_grad()
def code_statistics(
    model: HQA, images: Tensor, batch_size: int = 500
) -> CodeStatistics:
    """Usage and posterior entropy of the top-layer codes of ``model`` on ``images``.

    Args:
        model: the stack (its top layer's codes are the transmitted ones).
        images: (N, C, H, W) in [0, 1].
        batch_size: images per forward pass.
    """
    k = model.codebook_size
    counts = torch.zeros(k, dtype=torch.long)
    posterior_entropy, positions = 0.0, 0
    for i in range(0, len(images), batch_size):
        x = images[i : i + batch_size].to(model.device)
        logits = model.logits(x)
        counts += torch.bincount(logits.argmax(-1).flatten().cpu(), minlength=k)
        log_q = logits.log_softmax(-1)
        entropy = -(log_q.exp() * log_q).sum(-1)
        posterior_entropy += float(entropy.double().sum()) / math.log(2)
        positions += entropy.numel()
    return CodeStatistics(
        codebook_size=k,
        codes_used=int((counts > 0).sum()),
        distinct_codes_used=distinct_codes(
            model.top.codebook.detach().cpu()[counts > 0]
        ),
        entropy_bits=entropy_bits(counts),
        bits_per_code=math.log2(k),
        posterior_entropy_bits=posterior_entropy / max(positions, 1),
    )


@torch.no_grad()
def decode_spread(
    model: HQA,
    images: Tensor,
    num_samples: int = 4,
    decoding: Decoding = SEEDED_SAMPLING,
    batch_size: int = 500,
    sample_top: bool = False,
) -> float:
    """Mean per-pixel standard deviation across stochastic decodes.

    Each image is reconstructed ``num_samples`` times as ``decoding`` says (and
    with the top code drawn too with ``sample_top``); the standard deviation
    across the decodes is averaged over pixels and images. 0 means every
    stochastic decode of a code is the same image.

    Args:
        model: the stack.
        images: (N, C, H, W) in [0, 1].
        num_samples: decodes per image (>= 2).
        decoding: how each decode re-quantises (default: sampling, from a CPU
            generator seeded with 0, the same draws on every device); one
            random stream serves every decode.
        batch_size: images per forward pass.
        sample_top: also draw the top code from q(k | z_e).

    Raises:
        ValueError: ``num_samples < 2``.
    """
    if num_samples < 2:
        raise ValueError(f"num_samples must be >= 2, got {num_samples}")
    decoding = decoding.bound()
    total, pixels = 0.0, 0
    for i in range(0, len(images), batch_size):
        x = images[i : i + batch_size].to(model.device)
        decodes = torch.stack(
            [
                model.reconstruct(x, decoding, sample_top=sample_top)
                .clamp(0.0, 1.0)
                .float()
                for _ in range(num_samples)
            ]
        )
        spread = decodes.std(0)
        total += float(spread.double().sum())
        pixels += spread.numel()
    return total / max(pixels, 1)
