"""HQA classes bound to one model family (CompressAI names ``hqa-<family>``).

CompressAI's registry (``compressai.registry.MODELS``, filled by
``register_model``) and checkpoint-mode lookup
(``compressai.zoo.image.model_architectures``) hold *classes*. The generic
:class:`~compressai_hqa.HQA` takes any config; a named class builds its
family's config by default and refuses weights of another architecture, so
that ``-a hqa-celeba64 -p mnist.pth`` is an error instead of an MNIST model
evaluated under the CelebA name. :class:`MnistHQA` and :class:`CelebA64HQA` are
those of the shipped families; :func:`named_model` makes one for any family.
"""

from __future__ import annotations

from typing import ClassVar

from compressai.registry import register_model

from compressai_hqa.configs import HQAConfig, check_compatible
from compressai_hqa.families import get_config
from compressai_hqa.models.hqa import HQA

__all__ = ["CelebA64HQA", "MnistHQA", "named_model"]


class _NamedHQA(HQA):
    """An :class:`HQA` whose config must match :attr:`CONFIG`'s architecture."""

    CONFIG: ClassVar[str]

    def __init__(
        self, config: HQAConfig | str | None = None, num_layers: int | None = None
    ) -> None:
        expected = get_config(self.CONFIG)
        config = expected if config is None else get_config(config)
        check_compatible(config, expected)
        super().__init__(config, num_layers)


@register_model("hqa-mnist")
class MnistHQA(_NamedHQA):
    """The MNIST stack (paper Table 10); CompressAI name ``hqa-mnist``."""

    CONFIG = "mnist"


@register_model("hqa-celeba64")
class CelebA64HQA(_NamedHQA):
    """The CelebA 64x64 stack (paper Table 9); CompressAI name ``hqa-celeba64``."""

    CONFIG = "celeba64"


def named_model(family: str) -> type[HQA]:
    """A new HQA class bound to model family ``family`` (not registered).

    Raises:
        ValueError: no such family.
    """
    config = get_config(family)
    words = "".join(word.capitalize() for word in config.name.split("-"))
    return type(f"{words}HQA", (_NamedHQA,), {"CONFIG": config.name})
