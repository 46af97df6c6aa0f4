"""HQA classes bound to one config (CompressAI names ``hqa-mnist``, ``hqa-celeba64``).

CompressAI's registry (``compressai.registry.MODELS``, filled by
``register_model``) and checkpoint-mode lookup
(``compressai.zoo.image.model_architectures``) hold *classes*. The generic
:class:`~compressai_hqa.HQA` takes any config; :class:`MnistHQA` and
:class:`CelebA64HQA` build their config by default and refuse weights of
another architecture, so that ``-a hqa-celeba64 -p mnist.pth`` is an error
instead of an MNIST model evaluated under the CelebA name.
"""

from __future__ import annotations

from typing import ClassVar

from compressai.registry import register_model

from compressai_hqa.configs import HQAConfig, check_compatible, get_config
from compressai_hqa.models.hqa import HQA

__all__ = ["CelebA64HQA", "MnistHQA"]


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
