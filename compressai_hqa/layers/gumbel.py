"""The quantiser's relaxed (Gumbel-softmax) sample of training.

The hard draws of stochastic decoding (Gumbel-max) are
:func:`compressai_hqa.decoding.sample_categorical`.
"""

from __future__ import annotations

import torch

from torch import Tensor

__all__ = ["gumbel_noise", "relaxed_one_hot"]


def gumbel_noise(shape: torch.Size, device: torch.device) -> Tensor:
    """Standard Gumbel noise -log(-log U), U ~ Uniform[0, 1), in fp32.

    Computed in place from uniform draws: on CPU this is about four times faster
    than ``Tensor.exponential_`` (what ``F.gumbel_softmax`` uses). U = 0 gives
    -inf, the correct limit (that code gets zero weight).
    """
    return torch.empty(shape, device=device).uniform_().log_().neg_().log_().neg_()


def relaxed_one_hot(logits: Tensor, temperature: Tensor | float) -> Tensor:
    """A reparameterised Gumbel-softmax (concrete) sample, softmax((l + g) / T).

    E. Jang et al., `"Categorical Reparameterization with Gumbel-Softmax"
    <https://arxiv.org/abs/1611.01144>`_, ICLR 2017; C. Maddison et al., `"The
    Concrete Distribution" <https://arxiv.org/abs/1611.00712>`_, ICLR 2017.
    """
    noise = gumbel_noise(logits.shape, logits.device)
    return ((logits + noise) / temperature).softmax(-1)
