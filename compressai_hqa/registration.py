"""Makes HQA visible to CompressAI's zoo, registry and evaluation tools.

CompressAI 1.2.8 has no plugin mechanism: its tools look models up in plain
dicts (``compressai.zoo.image_models``, ``compressai.zoo.models``,
``compressai.zoo.image.model_architectures``, ``compressai.registry.MODELS``).
:func:`register` adds HQA to each of them; it runs when ``compressai_hqa`` is
imported and is idempotent.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from compressai_hqa.models import HQA
from compressai_hqa.zoo import hqa_celeba64, hqa_mnist

__all__ = ["ZOO_MODELS", "register"]


def _hqa_architecture_only(
    quality: int,
    metric: str = "mse",
    pretrained: bool = False,
    progress: bool = True,
    **kwargs: Any,
) -> HQA:
    """``-a hqa``: the generic architecture, for CompressAI's checkpoint mode."""
    raise ValueError(
        "'hqa' names the generic HQA architecture (use it with 'checkpoint' mode); "
        "for pretrained or fresh models use 'hqa-mnist' or 'hqa-celeba64'"
    )


#: CompressAI zoo name -> zoo function (CompressAI's signature).
ZOO_MODELS = {
    "hqa": _hqa_architecture_only,
    "hqa-mnist": hqa_mnist,
    "hqa-celeba64": hqa_celeba64,
}

_REGISTRY_MODELS = {
    "hqa": HQA,
    "hqa-mnist": partial(HQA, "mnist"),
    "hqa-celeba64": partial(HQA, "celeba64"),
}


def register() -> None:
    """Adds the HQA models to CompressAI's lookup tables (idempotent)."""
    import compressai.zoo
    import compressai.zoo.image

    from compressai.registry import MODELS

    for name, fn in ZOO_MODELS.items():
        compressai.zoo.image_models[name] = fn
        compressai.zoo.models[name] = fn
        compressai.zoo.image.model_architectures[name] = HQA
    MODELS.update(_REGISTRY_MODELS)
