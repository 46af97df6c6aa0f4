"""Frozen training recipes: how a stack is trained, one instance per paper table.

A :class:`Recipe` holds what a run needs besides the architecture
(:class:`~compressai_hqa.configs.HQAConfig`): per layer the steps, batch size,
learning rate and loss weights (:class:`LayerRecipe`, one column of the paper's
tables), and the schedules shared by all layers (learning rate, Gumbel
temperature, code resetting, loss scaling, EMA decay). It travels with the run
(checkpoints and logs), never with the weights, so a model trained with another
learning rate or reset rule still loads by its architecture name.
:meth:`Recipe.training` is what one layer's modules read
(:class:`~compressai_hqa.layers.LayerTraining`, handed to
:meth:`~compressai_hqa.models.HQALayer.configure_training` by the trainer); the
model itself knows nothing of recipes.
"""

from __future__ import annotations

import dataclasses

from dataclasses import dataclass, replace
from typing import Any

from compressai_hqa.configs import HQAConfig
from compressai_hqa.families import family_of
from compressai_hqa.layers.training_settings import (
    LAYER_TRAINING_DEFAULTS as _LAYER,
)
from compressai_hqa.layers.training_settings import (
    LOSS_SCALINGS,
    RESET_RULES,
    LayerTraining,
)

__all__ = [
    "HAMS_MNIST_RECIPE",
    "HQA_CELEBA64_RECIPE",
    "HQA_MNIST_RECIPE",
    "HQA_MNIST_V2_RECIPE",
    "LOSS_SCALINGS",
    "RECIPES",
    "RESET_RULES",
    "VQVAE_MNIST_RECIPE",
    "LayerRecipe",
    "LayerTraining",
    "Recipe",
    "add_recipe",
    "default_recipe",
    "get_recipe",
]


@dataclass(frozen=True)
class LayerRecipe:
    """How one layer is trained: one column of the paper's hyper-parameter tables.

    Args:
        steps: training steps.
        batch_size: training batch size (global, across ranks).
        lr: RAdam learning rate.
        beta_entropy: weight beta_e of the KL-to-uniform (negative entropy) term
            of the probabilistic quantiser.
        beta_commit: weight beta_c of the commitment term: the probabilistic
            commitment, or VQ-VAE's for the EMA quantiser.
    """

    steps: int = 18_000
    batch_size: int = 512
    lr: float = 4e-4
    beta_entropy: float = _LAYER.beta_entropy
    beta_commit: float = _LAYER.beta_commit

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError("steps and batch_size must be >= 1")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.beta_entropy < 0 or self.beta_commit < 0:
            raise ValueError("beta_entropy and beta_commit must be >= 0")


@dataclass(frozen=True)
class Recipe:
    """The greedy training of a stack (paper Algorithm 2, Appendix C).

    Args:
        layers: one :class:`LayerRecipe` per layer, bottom first.
        lr_final_ratio: final learning rate as a fraction of each layer's ``lr``.
        lr_flat_fraction: fraction of the steps at constant ``lr`` before the
            cosine annealing (the paper anneals "in the final third").
        grad_clip: gradient-norm clipping threshold.
        temp_start: initial Gumbel-softmax temperature.
        temp_end: final Gumbel-softmax temperature (linear decay).
        reset_window: batches over which code usage is counted.
        reset_threshold: a code is dead when its usage is below this fraction of
            the most-used code's usage over the window.
        reset_fraction: code resetting is active during this fraction of steps
            (0: never). EMA codebooks reset by the ``"data"`` rule only (dead
            codes revived at batch encoder outputs; a deviation, the papers
            have none).
        reset_noise: standard deviation of the noise added to a reset code
            (``reset_rule="paper"``).
        reset_rule: ``"paper"`` (the least-used code moves next to the most-used
            one, one per window; paper C.4) or ``"data"`` (every dead code is
            re-seeded at a batch encoder output; a documented deviation).
        reset_min_distance: the data rule seeds a code only at a batch point at
            least this squared distance from every code (a closer code would
            share its points); a deviation's knob, 4 unless changed.
        loss_scaling: one of :data:`LOSS_SCALINGS`.
        ema_decay: decay gamma of the EMA codebooks.
    """

    layers: tuple[LayerRecipe, ...]
    lr_final_ratio: float = 0.1
    lr_flat_fraction: float = 2.0 / 3.0
    grad_clip: float = 1.0
    temp_start: float = 0.66
    temp_end: float = 0.01
    reset_window: int = _LAYER.reset_window
    reset_threshold: float = _LAYER.reset_threshold
    reset_fraction: float = 0.75
    reset_noise: float = _LAYER.reset_noise
    reset_rule: str = _LAYER.reset_rule
    reset_min_distance: float = _LAYER.reset_min_distance
    loss_scaling: str = _LAYER.loss_scaling
    ema_decay: float = _LAYER.ema_decay

    def __post_init__(self) -> None:
        if not self.layers:
            raise ValueError("a recipe needs at least one layer")
        object.__setattr__(self, "layers", tuple(self.layers))
        if not 0.0 <= self.reset_fraction <= 1.0:
            raise ValueError(
                f"reset_fraction must be in [0, 1], got {self.reset_fraction}"
            )
        self.training(0)  # validates the shared fields

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def training(self, index: int) -> LayerTraining:
        """What the modules of layer ``index`` (0-based) read while it trains."""
        layer = self.layers[index]
        return LayerTraining(
            beta_entropy=layer.beta_entropy,
            beta_commit=layer.beta_commit,
            loss_scaling=self.loss_scaling,
            temperature=self.temp_start,
            reset_window=self.reset_window,
            reset_threshold=self.reset_threshold,
            reset_noise=self.reset_noise,
            reset_rule=self.reset_rule,
            reset_min_distance=self.reset_min_distance,
            ema_decay=self.ema_decay,
        )

    def replace_layers(self, **changes: Any) -> Recipe:
        """Returns a copy with ``changes`` applied to every layer."""
        return replace(self, layers=tuple(replace(c, **changes) for c in self.layers))

    def check(self, config: HQAConfig) -> None:
        """Raises ValueError unless this recipe has a layer for each of
        ``config``'s and a reset rule its quantisers have."""
        if self.num_layers < config.num_layers:
            raise ValueError(
                f"the recipe has {self.num_layers} layers, config {config.name!r} "
                f"has {config.num_layers}"
            )
        ema = any(layer.quantizer == "ema" for layer in config.layers)
        if ema and self.reset_fraction > 0 and self.reset_rule != "data":
            raise ValueError(
                f"config {config.name!r} has EMA codebooks, which reset by the "
                f"'data' rule only (got reset_rule={self.reset_rule!r}); use "
                "reset_rule='data' or reset_fraction=0"
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain-value form (lists, numbers, strings) for checkpoints and logs."""
        data = dataclasses.asdict(self)
        data["layers"] = [dict(layer) for layer in data["layers"]]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recipe:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        data = dict(data)
        layers = tuple(LayerRecipe(**layer) for layer in data.pop("layers"))
        return cls(layers=layers, **data)

    @classmethod
    def uniform(cls, num_layers: int, **changes: Any) -> Recipe:
        """``num_layers`` default :class:`LayerRecipe` (paper Table 10 values)."""
        return cls(layers=(LayerRecipe(),) * num_layers, **changes)


def _hqa_mnist(**changes: Any) -> Recipe:
    """Paper Table 10 and C.1: 18k steps of batch 512, RAdam 4e-4, beta 1e-3,
    temperature 0.66 -> 0.01, the paper's code resetting."""
    return Recipe.uniform(5, temp_start=0.66, temp_end=0.01, **changes)


def _hqa_celeba64() -> Recipe:
    """Paper Table 9: batch 1024, beta 5e-5, temperature 0.4 -> 0.01."""
    steps = (100_000, 100_000, 100_000, 100_000, 60_000, 30_000, 30_000)
    return Recipe(
        layers=tuple(
            LayerRecipe(steps=s, batch_size=1024, beta_entropy=5e-5, beta_commit=5e-5)
            for s in steps
        ),
        temp_start=0.4,
        temp_end=0.01,
    )


def _hams_mnist() -> Recipe:
    """Paper Table 12: batch 256, commitment beta 0.02, RAdam 4e-4 (1e-4 at
    layer 5), 18k steps, EMA codebooks (decay 0.99). The paper has no code
    resetting; here dead codes are revived at batch encoder outputs during the
    first 75 % of the steps (without it the codebooks collapse, see
    :class:`~compressai_hqa.layers.EMAQuantizer`)."""
    return Recipe(
        layers=tuple(
            LayerRecipe(batch_size=256, lr=lr, beta_entropy=0.0, beta_commit=0.02)
            for lr in (4e-4, 4e-4, 4e-4, 4e-4, 1e-4)
        ),
        reset_fraction=0.75,
        reset_rule="data",
        loss_scaling="position",
    )


def _vqvae_mnist() -> Recipe:
    """Paper Table 14: one layer, batch 512, commitment beta 0.125, RAdam 4e-4,
    18k steps, EMA codebook (decay 0.99), with the dead-code revival of
    :func:`_hams_mnist` (not in the paper)."""
    return Recipe(
        layers=(LayerRecipe(beta_entropy=0.0, beta_commit=0.125),),
        reset_fraction=0.75,
        reset_rule="data",
        loss_scaling="position",
    )


#: Paper Table 10 (HQA on MNIST).
HQA_MNIST_RECIPE: Recipe = _hqa_mnist()
#: This project's MNIST recipe, chosen by an ablation on held-out training digits
#: (the model card, ``zoo/README.md``): Table 10 with the data-driven code reset
#: and per-position loss scaling.
HQA_MNIST_V2_RECIPE: Recipe = _hqa_mnist(reset_rule="data", loss_scaling="position")
#: Paper Table 9 (HQA on CelebA 64x64).
HQA_CELEBA64_RECIPE: Recipe = _hqa_celeba64()
#: Paper Table 12 (HAMs on MNIST).
HAMS_MNIST_RECIPE: Recipe = _hams_mnist()
#: Paper Table 14 (the flat VQ-VAEs on MNIST).
VQVAE_MNIST_RECIPE: Recipe = _vqvae_mnist()

#: The named recipes (``--recipe NAME``); a model family names its default one
#: (:attr:`compressai_hqa.families.Family.recipe`).
RECIPES: dict[str, Recipe] = {
    "hqa-mnist": HQA_MNIST_RECIPE,
    "hqa-mnist-v2": HQA_MNIST_V2_RECIPE,
    "hqa-celeba64": HQA_CELEBA64_RECIPE,
    "hams-mnist": HAMS_MNIST_RECIPE,
    "vqvae-mnist": VQVAE_MNIST_RECIPE,
}


def get_recipe(name: str | Recipe) -> Recipe:
    """Looks a recipe up by name (``"hqa-mnist"``, ``"hams-mnist"``, ...).

    Raises:
        ValueError: no such recipe.
    """
    if isinstance(name, Recipe):
        return name
    try:
        return RECIPES[name]
    except KeyError:
        raise ValueError(
            f"unknown recipe {name!r}; available: {', '.join(sorted(RECIPES))}"
        ) from None


def add_recipe(name: str, recipe: Recipe) -> None:
    """Adds ``recipe`` to :data:`RECIPES` as ``name`` (again with the same value
    is a no-op), for a model family of your own (``docs/extending.md``).

    Raises:
        ValueError: another recipe of that name exists.
    """
    known = RECIPES.get(name)
    if known is not None and known != recipe:
        raise ValueError(f"a different recipe named {name!r} exists")
    RECIPES[name] = recipe


def default_recipe(config: HQAConfig) -> Recipe:
    """The recipe ``config`` is trained with by default: its family's
    (:mod:`compressai_hqa.families`), else :meth:`Recipe.uniform` (Table 10's
    values) for a config of no family."""
    family = family_of(config)
    if family is None:
        return Recipe.uniform(config.num_layers)
    return get_recipe(family.recipe)
