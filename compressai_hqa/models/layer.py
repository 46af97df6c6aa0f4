"""One HQA layer: a small VQ-VAE over the output of the layer below.

The same class builds the layers of the baselines of paper Table 3 (its
:class:`~compressai_hqa.configs.LayerConfig` switches): an EMA quantiser instead
of the probabilistic one, and a decoder that predicts the lower layer's code
indices (cross-entropy, HAMs) instead of its z_e.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn as nn
import torch.nn.functional as F

from torch import Tensor

from compressai_hqa.configs import LayerConfig
from compressai_hqa.decoding import Decoding
from compressai_hqa.layers import (
    Decoder,
    EMAQuantizer,
    Encoder,
    GlobalNormalization,
    LayerTraining,
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
        recon: mean squared error between ``reconstruction`` and ``target``, or
            for a ``"ce"`` layer the cross-entropy of the lower codes.
        kl: mean KL(q || uniform) per latent position (0 for the EMA quantiser).
        commit: mean probabilistic commitment per latent position (VQ-VAE's
            commitment, a mean over elements, for the EMA quantiser).
        perplexity: exp entropy of the batch-averaged posterior.
        target: the (normalised) input the layer reconstructs, or the lower
            layer's code indices (B, H, W) for a ``"ce"`` layer.
        reconstruction: the decoder's output in the normalised space (logits
            over the lower codes for a ``"ce"`` layer).
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
    """Encoder, quantiser and decoder of one HQA layer.

    Layer 1 reconstructs pixels (its decoder ends with a sigmoid); layer l >= 2
    reconstructs the continuous ``z_e`` of layer l-1 (``target="mse"``),
    normalised by this layer's :class:`GlobalNormalization` (sized by layer
    l-1's code dimension), or predicts layer l-1's code indices
    (``target="ce"``, HAMs).

    The codec path is ``encode`` (input -> ``z_e``), ``quantize`` (``z_e`` ->
    code indices), ``embed`` (indices -> code vectors), ``decode`` (code vectors
    -> input, or logits of the lower codes) and :meth:`codes_below`; ``forward``
    is one training step's computation, whose settings
    :meth:`configure_training` and schedule :meth:`set_temperature` and
    :meth:`set_code_reset` set.

    Args:
        in_channels: channels of this layer's input (image channels for layer 1,
            the code dimension of the layer below otherwise).
        config: the layer's architecture.
        bottom: whether this is layer 1 (pixels, sigmoid, no normalisation).
        training: loss weights, initial temperature and code-reset settings
            (default: :class:`~compressai_hqa.layers.LayerTraining`'s, paper
            Table 10's values).
        lower_codes: the codebook size of the layer below (``target="ce"``).
    """

    def __init__(
        self,
        in_channels: int,
        config: LayerConfig,
        bottom: bool,
        training: LayerTraining | None = None,
        lower_codes: int | None = None,
    ) -> None:
        super().__init__()
        training = LayerTraining() if training is None else training
        self.config = config
        self.in_channels = in_channels
        self.bottom = bottom
        self.target = "mse" if bottom else config.target
        if self.target == "ce" and not lower_codes:
            raise ValueError("a cross-entropy layer needs lower_codes")
        self.normalizer = None if bottom else GlobalNormalization(in_channels)
        self.encoder = Encoder(
            in_channels,
            config.codebook_dim,
            config.enc_hidden,
            num_layers=config.enc_layers,
            downsample=config.downsample,
            dropout=config.dropout,
            downsample_steps=config.downsample_steps,
        )
        # Sizes here; the training settings (reset rule, EMA decay, ...) are set
        # by configure_training below, the one place that sets them.
        self.quantizer: ProbabilisticQuantizer | EMAQuantizer
        if config.quantizer == "ema":
            self.quantizer = EMAQuantizer(config.codebook_size, config.codebook_dim)
        else:
            self.quantizer = ProbabilisticQuantizer(
                config.codebook_size,
                config.codebook_dim,
                temperature=training.temperature,
            )
        self.decoder = Decoder(
            config.codebook_dim,
            lower_codes if self.target == "ce" else in_channels,
            config.dec_hidden,
            num_layers=config.dec_layers,
            upsample=config.downsample,
            dilations=config.dec_dilations,
            dropout=config.dropout,
            sigmoid=bottom,
            upsample_steps=config.downsample_steps,
        )
        self.configure_training(training)

    def configure_training(self, training: LayerTraining) -> None:
        """Sets the loss weights and code-reset settings of the next training
        steps: the one way training settings reach the layer and its quantiser
        (the temperature follows :meth:`set_temperature`; none of these is
        saved in the state dict)."""
        self.training_settings = training
        self.quantizer.configure_training(training)

    @property
    def loss_scaling(self) -> str:
        """How the regularisers are weighed (see :class:`LayerOutput`)."""
        return self.training_settings.loss_scaling

    # ------------------------------------------------------------ codebook
    @property
    def codebook_size(self) -> int:
        """Number of codes K."""
        return self.quantizer.codebook_size

    @property
    def codebook(self) -> Tensor:
        """The code vectors (K, D): a parameter of the layer, or a buffer for
        the EMA quantiser."""
        return self.quantizer.codebook

    @property
    def reset_mask(self) -> Tensor | None:
        """(K,) bool: the codes the last training step reset (None for the EMA
        quantiser)."""
        return getattr(self.quantizer, "reset_mask", None)

    @property
    def temperature(self) -> float:
        """The Gumbel-softmax temperature of training (reads the device; 0 for
        the EMA quantiser, which takes the nearest code)."""
        if isinstance(self.quantizer, EMAQuantizer):
            return 0.0
        return float(self.quantizer.temperature)

    def set_temperature(self, temperature: float) -> None:
        """Sets the Gumbel-softmax temperature of the next training steps (the
        EMA quantiser has none)."""
        if isinstance(self.quantizer, ProbabilisticQuantizer):
            self.quantizer.set_temperature(temperature)

    def set_code_reset(self, enabled: bool) -> None:
        """Turns the resetting of dead codes on or off (training mode only; the
        EMA quantiser revives dead codes at batch encoder outputs)."""
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

    def quantize(self, z_e: Tensor, decoding: Decoding | str = "argmin") -> Tensor:
        """Code indices (B, h, w) of ``z_e`` picked as ``decoding`` says: the
        nearest codes (``"argmin"``) or a draw from q(k | z_e) (``"sample"``).

        Raises:
            ValueError: a mode this layer's quantiser cannot decode by.
        """
        return self.quantizer.quantize(z_e, decoding)

    def embed(self, indices: Tensor) -> Tensor:
        """Code vectors z_q (B, D, h, w) of code indices (B, h, w)."""
        return self.quantizer.embed(indices)

    def decode(self, z_q: Tensor) -> Tensor:
        """Estimate of this layer's (unnormalised) input from quantised codes,
        or for a ``"ce"`` layer the logits (B, K_below, H, W) of the lower codes."""
        out = self.decoder(z_q)
        return out if self.target == "ce" else self.unnormalize(out)

    def codes_below(
        self, decoded: Tensor, below: HQALayer, decoding: Decoding | str = "argmin"
    ) -> Tensor:
        """The code indices of the layer ``below`` from :meth:`decode`'s output,
        picked as ``decoding`` says: ``below`` quantises the estimated z_e, or
        for a ``"ce"`` layer the decoder's logits of the lower codes are picked
        from (the most likely code, or a draw).

        Raises:
            ValueError: a mode this layer or ``below`` cannot decode by.
        """
        if self.target == "mse":
            return below.quantize(decoded, decoding)
        logits = decoded.permute(0, 2, 3, 1).float()
        return Decoding.of(decoding).codes(logits)

    def forward(self, x: Tensor, codes: Tensor | None = None) -> LayerOutput:
        """One training step's computation (paper Algorithm 2, lines 13-21).

        In training mode the normalisation statistics absorb ``x`` and the
        decoder sees a relaxed Gumbel-softmax sample (the nearest code with a
        straight-through gradient for the EMA quantiser); in eval mode the codes
        are the argmin and nothing but the EMA codebook is updated.

        Args:
            x: the layer's input: images, or the lower layer's z_e.
            codes: for a ``"ce"`` layer, the lower layer's code indices of ``x``
                (B, H, W): the cross-entropy target.
        """
        if self.normalizer is not None and self.training:
            self.normalizer.update(x)
        normalized = self.normalize(x)
        z_e = self.encoder(normalized)
        q = self.quantizer(z_e)
        reconstruction = self.decoder(q.z_q)
        if self.target == "ce":
            if codes is None:
                raise ValueError("a cross-entropy layer needs the lower codes")
            target = codes
            recon = F.cross_entropy(reconstruction.float(), codes)
        else:
            target = normalized
            recon = F.mse_loss(reconstruction.float(), target.float())
        ratio = (
            z_e[0, 0].numel() / normalized[0].numel()
            if self.loss_scaling == "original"
            else 1.0
        )
        settings = self.training_settings
        reg = settings.beta_entropy * q.kl + settings.beta_commit * q.commit
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
