"""The registry of model families: one name, everything every command needs.

A :class:`Family` is one architecture (:class:`~compressai_hqa.configs.HQAConfig`,
whose name is the family's) with what goes with it: the name of its default
training recipe (in :data:`compressai_hqa.recipes.RECIPES`), its dataset transform
(one of :data:`~compressai_hqa.datasets.DATASET_KINDS`), the weights shipped for
it, and whether CompressAI's zoo lists it. :data:`FAMILIES` is the one table of
names: the zoo (``hqa(config=NAME)``, the shipped weights), the CompressAI
registration (``hqa-NAME``), the trainer's ``--config NAME``, the codec's
``--model hqa-NAME`` and the evaluation datasets ``NAME:ROOT`` all read it.

A new family is one :class:`Family` added to :data:`FAMILIES` here, or, from
your own code, :func:`compressai_hqa.registration.register_family` (see
``docs/extending.md``).
"""

from __future__ import annotations

from dataclasses import dataclass

from compressai_hqa.configs import (
    CELEBA64,
    HAMS_GS_MNIST,
    HAMS_MNIST,
    HAMS_MSE_MNIST,
    MNIST,
    MNIST_WIDE,
    VQVAE_MNIST,
    HQAConfig,
)
from compressai_hqa.datasets import DATASET_KINDS

__all__ = [
    "FAMILIES",
    "Family",
    "ShippedWeights",
    "add_family",
    "family_of",
    "get_config",
    "get_family",
]


@dataclass(frozen=True)
class ShippedWeights:
    """A weights file shipped with the package.

    Args:
        filename: the file in the repository's ``zoo/`` folder (installed as
            ``compressai_hqa/zoo_weights/``).
        sha256: its SHA-256, checked on every load.
    """

    filename: str
    sha256: str


@dataclass(frozen=True)
class Family:
    """One named model family.

    Args:
        config: the architecture; its ``name`` is the family's name.
        recipe: the name of the recipe it trains with by default (a key of
            :data:`compressai_hqa.recipes.RECIPES`).
        dataset: how its images are read for training and evaluation, one of
            :data:`~compressai_hqa.datasets.DATASET_KINDS`.
        weights: the weights shipped for it, if any.
        compressai: listed in CompressAI's zoo and registry as ``hqa-<name>``.
        description: one line for command-line help.

    Raises:
        ValueError: an unknown dataset transform.
    """

    config: HQAConfig
    recipe: str
    dataset: str
    weights: ShippedWeights | None = None
    compressai: bool = False
    description: str = ""

    def __post_init__(self) -> None:
        if self.dataset not in DATASET_KINDS:
            raise ValueError(
                f"dataset must be one of {DATASET_KINDS}, got {self.dataset!r}"
            )

    @property
    def name(self) -> str:
        """The family's name: its config's."""
        return self.config.name


def _table(*families: Family) -> dict[str, Family]:
    return {family.name: family for family in families}


#: Every family, by name.
FAMILIES: dict[str, Family] = _table(
    Family(
        MNIST,
        "hqa-mnist",
        "mnist",
        weights=ShippedWeights(
            "hqa-mnist-0da85963.pth",
            "0da85963cc307be90a6d51a4a45e2941402222c9610b59c530cf164a8c644d9e",
        ),
        compressai=True,
        description="paper Table 10: 5 layers, 32x32 digits, K = 256",
    ),
    Family(
        MNIST_WIDE,
        "hqa-mnist",
        "mnist",
        description="Table 10 with the original code's wider upper layers",
    ),
    Family(
        CELEBA64,
        "hqa-celeba64",
        "faces",
        compressai=True,
        description="paper Table 9: 7 layers, 64x64 faces, K = 512",
    ),
    Family(
        HAMS_MNIST,
        "hams-mnist",
        "mnist",
        description="HAMs (paper Table 12): EMA codebooks, cross-entropy above",
    ),
    Family(
        HAMS_GS_MNIST,
        "hqa-mnist",
        "mnist",
        description="HAMs with HQA's Gumbel quantiser (paper Table 3)",
    ),
    Family(
        HAMS_MSE_MNIST,
        "hams-mnist",
        "mnist",
        description="HAMs with squared error on z_e (paper Table 3)",
    ),
    *(
        Family(
            config,
            "vqvae-mnist",
            "mnist",
            description=f"a flat VQ-VAE of paper Table 14, {grid}x{grid} codes",
        )
        for grid, config in VQVAE_MNIST.items()
    ),
)


def get_family(name: str) -> Family:
    """The family called ``name``.

    Raises:
        ValueError: no such family.
    """
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(
            f"unknown model family {name!r}; available: {', '.join(sorted(FAMILIES))}"
        ) from None


def family_of(config: HQAConfig) -> Family | None:
    """The family named as ``config`` is, or None (an unregistered config)."""
    return FAMILIES.get(config.name)


def get_config(name: str | HQAConfig) -> HQAConfig:
    """The architecture of family ``name``; an :class:`HQAConfig` is returned as is.

    Raises:
        ValueError: no such family.
    """
    if isinstance(name, HQAConfig):
        return name
    return get_family(name).config


def add_family(family: Family) -> None:
    """Adds ``family`` to :data:`FAMILIES` (again with the same value is a no-op).

    :func:`compressai_hqa.registration.register_family` also makes CompressAI
    see it.

    Raises:
        ValueError: another family of that name exists.
    """
    known = FAMILIES.get(family.name)
    if known is not None and known != family:
        raise ValueError(f"a different family named {family.name!r} exists")
    FAMILIES[family.name] = family
