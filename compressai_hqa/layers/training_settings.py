"""What one layer reads while it trains: loss weights and code-reset settings.

The model knows nothing of training recipes: a trainer turns its recipe into one
:class:`LayerTraining` per layer and hands it to
:meth:`HQALayer.configure_training <compressai_hqa.models.HQALayer.configure_training>`,
the one interface through which training settings reach a layer and its
quantiser. These are plain settings, not weights: they are not saved in the
state dict (the training state that is, the Gumbel temperature and the usage
counts, lives in the quantisers' buffers). The defaults here are the only ones:
the quantisers' constructors and the recipes take theirs from
:data:`LAYER_TRAINING_DEFAULTS`.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "LAYER_TRAINING_DEFAULTS",
    "LOSS_SCALINGS",
    "RESET_RULES",
    "LayerTraining",
]

#: How a layer weighs its entropy and commitment terms against the MSE (mean over
#: the target's elements): ``"original"`` multiplies them by (latent positions) /
#: (target elements) as the original code does (1/4 at MNIST layer 1, 1/256
#: above); ``"position"`` applies beta to their mean per latent position, as the
#: paper's equations are written.
LOSS_SCALINGS = ("original", "position")

#: Code-reset rules (see :class:`compressai_hqa.layers.ProbabilisticQuantizer`):
#: ``"paper"`` moves the least-used code next to the most-used one (paper C.4);
#: ``"data"`` re-seeds every dead code at a batch encoder output (a deviation).
RESET_RULES = ("paper", "data")


@dataclass(frozen=True)
class LayerTraining:
    """What the modules of one layer read while it trains.

    Args:
        beta_entropy: weight beta_e of the KL-to-uniform (negative entropy) term
            of the probabilistic quantiser.
        beta_commit: weight beta_c of the commitment term: the probabilistic
            commitment, or VQ-VAE's for the EMA quantiser.
        loss_scaling: one of :data:`LOSS_SCALINGS`.
        temperature: initial Gumbel-softmax temperature of a new layer (a
            trainer's schedule sets it at every step).
        reset_window: batches over which code usage is counted.
        reset_threshold: a code is dead when its count over a window is below
            this fraction of the most-used code's count.
        reset_noise: standard deviation of the noise added to a code moved by
            the ``"paper"`` rule.
        reset_rule: one of :data:`RESET_RULES`.
        reset_min_distance: the ``"data"`` rule seeds a code only at a batch
            point at least this squared distance from every code.
        ema_decay: decay gamma of an EMA codebook
            (:class:`~compressai_hqa.layers.EMAQuantizer`).

    Raises:
        ValueError: a setting out of its range.
    """

    beta_entropy: float = 1e-3
    beta_commit: float = 1e-3
    loss_scaling: str = "original"
    temperature: float = 1.0
    reset_window: int = 20
    reset_threshold: float = 0.03
    reset_noise: float = 0.01
    reset_rule: str = "paper"
    reset_min_distance: float = 4.0
    ema_decay: float = 0.99

    def __post_init__(self) -> None:
        if self.beta_entropy < 0 or self.beta_commit < 0:
            raise ValueError("beta_entropy and beta_commit must be >= 0")
        if self.loss_scaling not in LOSS_SCALINGS:
            raise ValueError(
                f"loss_scaling must be one of {LOSS_SCALINGS}, "
                f"got {self.loss_scaling!r}"
            )
        if self.reset_rule not in RESET_RULES:
            raise ValueError(
                f"reset_rule must be one of {RESET_RULES}, got {self.reset_rule!r}"
            )
        if not self.reset_min_distance >= 0:
            raise ValueError(
                f"reset_min_distance must be >= 0, got {self.reset_min_distance}"
            )
        if not 0.0 < self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in (0, 1), got {self.ema_decay}")


#: The default settings: the only place their values are written.
LAYER_TRAINING_DEFAULTS = LayerTraining()
