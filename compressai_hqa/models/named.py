"""HQA classes bound to one config, and the config/weights compatibility check.

CompressAI's registry (``compressai.registry.MODELS``) and checkpoint-mode
lookup (``compressai.zoo.image.model_architectures``) hold *classes*. The
generic :class:`~compressai_hqa.HQA` takes any config; :class:`MnistHQA` and
:class:`CelebA64HQA` build their config by default and refuse weights of
another architecture, so that ``-a hqa-celeba64 -p mnist.pth`` is an error
instead of an MNIST model evaluated under the CelebA name.
"""

from __future__ import annotations

from typing import ClassVar

from compressai_hqa.configs import HQAConfig, get_config
from compressai_hqa.models.hqa import HQA

__all__ = ["NAMED_MODELS", "CelebA64HQA", "MnistHQA", "check_compatible"]


def check_compatible(
    config: HQAConfig, expected: HQAConfig, num_layers: int | None = None
) -> None:
    """Raises ValueError unless ``config``'s layers are ``expected``'s architecture.

    Training settings (steps, batch size, loss weights) may differ; the image
    channels and the architecture of each of the first ``num_layers`` layers
    (default: all of ``config``'s) must be equal, and ``expected`` must have at
    least that many layers.
    """
    n = config.num_layers if num_layers is None else int(num_layers)
    same = (
        config.in_channels == expected.in_channels
        and n <= expected.num_layers
        and [c.architecture() for c in config.layers[:n]]
        == [c.architecture() for c in expected.layers[:n]]
    )
    if not same:
        raise ValueError(
            f"the weights are an HQA of config {config.name!r} "
            f"({config.in_channels} channels, {config.num_layers} layers), which "
            f"does not match the requested {expected.name!r} "
            f"({expected.in_channels} channels, {expected.num_layers} layers)"
        )


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


class MnistHQA(_NamedHQA):
    """The MNIST stack (paper Table 10); CompressAI name ``hqa-mnist``."""

    CONFIG = "mnist"


class CelebA64HQA(_NamedHQA):
    """The CelebA 64x64 stack (paper Table 9); CompressAI name ``hqa-celeba64``."""

    CONFIG = "celeba64"


#: CompressAI name -> class.
NAMED_MODELS: dict[str, type[HQA]] = {
    "hqa": HQA,
    "hqa-mnist": MnistHQA,
    "hqa-celeba64": CelebA64HQA,
}
