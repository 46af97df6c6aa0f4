"""One HQA layer: a small VQ-VAE over the output of the layer below."""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn as nn
import torch.nn.functional as F

from torch import Generator, Tensor

from compressai_hqa.configs import LOSS_SCALINGS, LayerConfig
from compressai_hqa.layers import (
    Decoder,
    Encoder,
    GlobalNormalization,
    ProbabilisticQuantizer,
)

__all__ = ["HQALayer", "LayerOutput"]


@dataclass
class LayerOutput:
    """What :meth:`HQALayer.forward` returns for one training batch.

    Attributes:
        loss: ``recon + r * (beta_e * kl + beta_c * commit)``. With
            ``loss_scaling="original"``, ``r`` is the number of latent positions
            per element of the target, so that every term is a sum over the image
            divided by its number of elements, as in the original code; with
            ``"position"``, ``r = 1``: beta weighs the per-position means, as the
            paper's equations are written.
        recon: mean squared error between ``reconstruction`` and ``target``.
        kl: mean KL(q || uniform) per latent position.
        commit: mean probabilistic commitment per latent position.
        perplexity: exp entropy of the batch-averaged posterior.
        target: the (normalised) input the layer reconstructs.
        reconstruction: the decoder's output in the normalised space.
        z_e: continuous codes (B, D, h, w).
        indices: argmin code indices (B, h, w).
    """

    loss: Tensor
    recon: Tensor
    kl: Tensor
    commit: Tensor
    perplexity: Tensor
    target: Tensor
    reconstruction: Tensor
    z_e: Tensor
    indices: Tensor


class HQALayer(nn.Module):
    """Encoder, probabilistic quantiser and decoder of one HQA layer.

    Layer 1 reconstructs pixels (its decoder ends with a sigmoid); layer l >= 2
    reconstructs the continuous ``z_e`` of layer l-1, normalised by this layer's
    :class:`GlobalNormalization` (sized by layer l-1's code dimension).

    The codec path is ``encode`` (input -> ``z_e``), ``quantize`` (``z_e`` ->
    code indices), ``embed`` (indices -> code vectors) and ``decode`` (code
    vectors -> input); ``forward`` is one training step's computation, whose
    schedule :meth:`set_temperature` and :meth:`set_code_reset` set.

    Args:
        in_channels: channels of this layer's input (image channels for layer 1,
            the code dimension of the layer below otherwise).
        config: architecture and loss weights.
        bottom: whether this is layer 1 (pixels, sigmoid, no normalisation).
        temperature: initial Gumbel temperature.
        reset_window, reset_threshold, reset_noise, reset_rule: code-reset
            settings (see :class:`ProbabilisticQuantizer`).
        loss_scaling: ``"original"`` or ``"position"`` (see :class:`LayerOutput`).
    """

    def __init__(
        self,
        in_channels: int,
        config: LayerConfig,
        bottom: bool,
        temperature: float = 1.0,
        reset_window: int = 20,
        reset_threshold: float = 0.03,
        reset_noise: float = 0.01,
        reset_rule: str = "paper",
        loss_scaling: str = "original",
    ) -> None:
        super().__init__()
        if loss_scaling not in LOSS_SCALINGS:
            raise ValueError(
                f"loss_scaling must be one of {LOSS_SCALINGS}, got {loss_scaling!r}"
            )
        self.config = config
        self.loss_scaling = loss_scaling
        self.in_channels = in_channels
        self.bottom = bottom
        self.normalizer = None if bottom else GlobalNormalization(in_channels)
        self.encoder = Encoder(
            in_channels,
            config.codebook_dim,
            config.enc_hidden,
            num_layers=config.enc_layers,
            downsample=config.downsample,
            dropout=config.dropout,
        )
        self.quantizer = ProbabilisticQuantizer(
            config.codebook_size,
            config.codebook_dim,
            temperature=temperature,
            reset_window=reset_window,
            reset_threshold=reset_threshold,
            reset_noise=reset_noise,
            reset_rule=reset_rule,
        )
        self.decoder = Decoder(
            config.codebook_dim,
            in_channels,
            config.dec_hidden,
            num_layers=config.dec_layers,
            upsample=config.downsample,
            dilations=config.dec_dilations,
            dropout=config.dropout,
            sigmoid=bottom,
        )

    # ------------------------------------------------------------ codebook
    @property
    def codebook_size(self) -> int:
        """Number of codes K."""
        return self.quantizer.codebook_size

    @property
    def codebook(self) -> nn.Parameter:
        """The code vectors (K, D), a parameter of the layer."""
        return self.quantizer.codebook

    @property
    def reset_mask(self) -> Tensor:
        """(K,) bool: the codes the last training step reset."""
        return self.quantizer.reset_mask

    @property
    def temperature(self) -> float:
        """The Gumbel-softmax temperature of training (reads the device)."""
        return float(self.quantizer.temperature)

    def set_temperature(self, temperature: float) -> None:
        """Sets the Gumbel-softmax temperature of the next training steps."""
        self.quantizer.set_temperature(temperature)

    def set_code_reset(self, enabled: bool) -> None:
        """Turns the resetting of dead codes on or off (training mode only)."""
        self.quantizer.set_code_reset(enabled)

    def codes_used(self) -> int:
        """Codes chosen at least once in the current reset window (reads the
        device)."""
        return int((self.quantizer.usage > 0).sum())

    # --------------------------------------------------------------- codec
    def normalize(self, x: Tensor) -> Tensor:
        """This layer's input in its normalised space (never updates statistics)."""
        return x if self.normalizer is None else self.normalizer.normalize(x)

    def unnormalize(self, x: Tensor) -> Tensor:
        return x if self.normalizer is None else self.normalizer.unnormalize(x)

    def encode(self, x: Tensor) -> Tensor:
        """Continuous codes z_e of the layer input ``x`` (no quantisation)."""
        return self.encoder(self.normalize(x))

    def logits(self, z_e: Tensor) -> Tensor:
        """Unnormalised log posterior of the codes, (B, h, w, K), for ``z_e``."""
        return self.quantizer.logits(z_e)

    def quantize(
        self, z_e: Tensor, mode: str = "argmin", generator: Generator | None = None
    ) -> Tensor:
        """Code indices (B, h, w) of ``z_e``: the nearest codes (``"argmin"``) or
        a draw from q(k | z_e) (``"sample"``, with ``generator``)."""
        return self.quantizer.quantize(z_e, mode, generator)

    def embed(self, indices: Tensor) -> Tensor:
        """Code vectors z_q (B, D, h, w) of code indices (B, h, w)."""
        return self.quantizer.embed(indices)

    def decode(self, z_q: Tensor) -> Tensor:
        """Estimate of this layer's (unnormalised) input from quantised codes."""
        return self.unnormalize(self.decoder(z_q))

    def forward(self, x: Tensor) -> LayerOutput:
        """One training step's computation (paper Algorithm 2, lines 13-21).

        In training mode the normalisation statistics absorb ``x`` and the
        decoder sees a relaxed Gumbel-softmax sample; in eval mode the codes are
        the argmin and nothing is updated.
        """
        if self.normalizer is not None and self.training:
            self.normalizer.update(x)
        target = self.normalize(x)
        z_e = self.encoder(target)
        q = self.quantizer(z_e)
        reconstruction = self.decoder(q.z_q)
        recon = F.mse_loss(reconstruction.float(), target.float())
        ratio = (
            z_e[0, 0].numel() / target[0].numel()
            if self.loss_scaling == "original"
            else 1.0
        )
        reg = self.config.beta_entropy * q.kl + self.config.beta_commit * q.commit
        return LayerOutput(
            loss=recon + ratio * reg,
            recon=recon,
            kl=q.kl,
            commit=q.commit,
            perplexity=q.perplexity,
            target=target,
            reconstruction=reconstruction,
            z_e=z_e,
            indices=q.indices,
        )
