"""The systems of paper Table 3 as (architecture, recipe) pairs on one implementation.

Each row is a model family of :mod:`compressai_hqa.families` (its
:class:`~compressai_hqa.configs.HQAConfig`: what the network is) with a
:class:`~compressai_hqa.recipes.Recipe` (how it is trained: the family's own,
unless the row differs); ``examples/train_hqa.py --system NAME`` trains it and
every one loads as an :class:`~compressai_hqa.HQA`, so the same evaluation
measures all of them. The
paper ablates HQA back to HAMs (Fauw et al. 2019, Table 12) and to a flat VQ-VAE
(Table 14):

=============  ===============  ==============  ======================  ==========
system         quantiser        layer >= 2 loss  regulariser             widths
=============  ===============  ==============  ======================  ==========
vqvae          EMA (no stack)   (pixels)        commitment 0.125        Table 14
hams           EMA              cross-entropy   commitment 0.02         Table 12
hams-gs        Gumbel + resets  cross-entropy   none                    Table 12
hams-mse       EMA              MSE on z_e      commitment 0.02         Table 10
hams-gs-mse    Gumbel + resets  MSE on z_e      none                    Table 10
hqa            Gumbel + resets  MSE on z_e      probabilistic (1e-3)    Table 10
hqa-v2         as hqa, with this project's data reset and per-position scaling
=============  ===============  ==============  ======================  ==========

Where the paper is silent these are this project's choices: the "+ GS" systems
take HQA's Gumbel schedule, code resetting, batch and learning rate (Table 10)
with no entropy or commitment term (the "probabilistic loss" is the last
ingredient added); the "+ MSE" systems take Table 10's decoder widths (HAMs'
narrower decoders offset their 256-way output); every layer >= 2 encodes the
lower layer's continuous z_e, as HQA's do (paper Algorithm 2).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from compressai_hqa.configs import VQVAE_MNIST, HQAConfig
from compressai_hqa.families import get_family
from compressai_hqa.recipes import HQA_MNIST_V2_RECIPE, Recipe, get_recipe

__all__ = ["SYSTEMS", "System", "bits_per_image", "get_system", "with_config"]


@dataclass(frozen=True)
class System:
    """One row of paper Table 3.

    Args:
        name: the ``--system`` name.
        label: the row's name in the paper's table.
        config: the architecture (for ``vqvae``: the 8-bit 1x1 one).
        recipe: how it is trained.
        flat: one model per rate (the VQ-VAE) instead of one stack for all.
    """

    name: str
    label: str
    config: HQAConfig
    recipe: Recipe
    flat: bool = False

    def rates(self) -> dict[int, tuple[HQAConfig, int]]:
        """The model giving each rate: bits per image -> (architecture, layers).

        A stack gives every rate by truncation (the same config, fewer layers);
        a flat system has one single-layer config per code grid.
        """
        if self.flat:
            return {
                bits_per_image(config, 1): (config, 1)
                for config in VQVAE_MNIST.values()
            }
        n = self.config.num_layers
        return {
            bits_per_image(self.config, i): (self.config, i) for i in range(1, n + 1)
        }


def bits_per_image(config: HQAConfig, num_layers: int) -> int:
    """Bits per ``image_size`` image of the codes of layer ``num_layers``."""
    side = -(-config.image_size // config.downsampling(num_layers))
    return side * side * config.layers[num_layers - 1].bits_per_code


def _row(
    name: str, label: str, family: str, recipe: Recipe | None = None, **kw: bool
) -> System:
    """A row on model family ``family``: its architecture, and its default recipe
    unless ``recipe`` is given."""
    known = get_family(family)
    return System(name, label, known.config, recipe or get_recipe(known.recipe), **kw)


#: The "+ GS" systems: Table 10's recipe without the entropy and commitment terms.
_GS = get_recipe("hqa-mnist").replace_layers(beta_entropy=0.0, beta_commit=0.0)

#: The rows of paper Table 3, by ``--system`` name.
SYSTEMS: dict[str, System] = {
    s.name: s
    for s in (
        _row("vqvae", "VQ-VAE", VQVAE_MNIST[1].name, flat=True),
        _row("hams", "+ hierarchy (HAMs)", "hams-mnist"),
        _row("hams-gs", "HAMs + GS", "hams-gs-mnist", _GS),
        _row("hams-mse", "HAMs + MSE", "hams-mse-mnist"),
        _row("hams-gs-mse", "HAMs + GS + MSE", "mnist", _GS),
        _row("hqa", "+ probabilistic loss (HQA)", "mnist"),
        _row("hqa-v2", "HQA, this project's recipe", "mnist", HQA_MNIST_V2_RECIPE),
    )
}


def get_system(name: str | System) -> System:
    """Looks a system up by its ``--system`` name."""
    if isinstance(name, System):
        return name
    try:
        return SYSTEMS[name]
    except KeyError:
        raise ValueError(
            f"unknown system {name!r}; available: {', '.join(SYSTEMS)}"
        ) from None


def with_config(system: System, config: HQAConfig) -> System:
    """``system`` on another architecture of the same kind (e.g. a VQ-VAE of
    another code grid); raises ValueError if the quantisers or targets differ."""
    kinds = [(c.quantizer, c.target) for c in config.layers]
    expected = [(c.quantizer, c.target) for c in system.config.layers]
    if kinds != expected[: len(kinds)] or len(kinds) > system.recipe.num_layers:
        raise ValueError(
            f"config {config.name!r} is not an architecture of system "
            f"{system.name!r} (its quantisers or targets differ)"
        )
    return replace(system, config=config)
