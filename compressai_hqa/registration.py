"""Makes HQA visible to CompressAI's zoo, registry and evaluation tools.

CompressAI 1.2.8 has no plugin mechanism: its tools look models up in plain
dicts (``compressai.zoo.image_models``, ``compressai.zoo.models``,
``compressai.zoo.image.model_architectures``, ``compressai.registry.MODELS``).
:func:`register` adds HQA to each of them; it runs when ``compressai_hqa`` is
imported and is idempotent.

As with CompressAI's own ``register_model``, ``MODELS`` and
``model_architectures`` hold classes: :class:`~compressai_hqa.HQA` for ``hqa``
(any config) and the config-bound :class:`~compressai_hqa.models.MnistHQA` and
:class:`~compressai_hqa.models.CelebA64HQA`, whose ``from_state_dict`` refuses
weights of another architecture.
"""

from __future__ import annotations

from compressai_hqa.models.named import NAMED_MODELS
from compressai_hqa.zoo import hqa_any, hqa_celeba64, hqa_mnist

__all__ = ["ZOO_MODELS", "register"]

#: CompressAI zoo name -> zoo function (CompressAI's signature).
ZOO_MODELS = {
    "hqa": hqa_any,
    "hqa-mnist": hqa_mnist,
    "hqa-celeba64": hqa_celeba64,
}


def register() -> None:
    """Adds the HQA models to CompressAI's lookup tables (idempotent)."""
    import compressai.zoo
    import compressai.zoo.image

    from compressai.registry import MODELS

    for name, fn in ZOO_MODELS.items():
        compressai.zoo.image_models[name] = fn
        compressai.zoo.models[name] = fn
        compressai.zoo.image.model_architectures[name] = NAMED_MODELS[name]
    MODELS.update(NAMED_MODELS)
