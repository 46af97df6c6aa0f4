"""Makes HQA visible to CompressAI's zoo and evaluation tools.

CompressAI 1.2.8 has no plugin mechanism. Its registry,
``compressai.registry.MODELS``, is filled by ``register_model`` on the model
classes, as for CompressAI's own models (:mod:`compressai_hqa.models`: ``HQA``
for ``hqa``, any config, and the config-bound ``MnistHQA`` and ``CelebA64HQA``,
whose ``from_state_dict`` refuses weights of another architecture). Its zoo and
``eval_model`` look models up in plain dicts (``compressai.zoo.image_models``,
``compressai.zoo.models``, ``compressai.zoo.image.model_architectures``):
:func:`register`, here and nowhere else, adds HQA to them. It runs when
``compressai_hqa`` is imported and is idempotent. CompressAI's own scripts never
import this package: the start-up hook that the wheel installs
(``_compressai_hqa_hook``) imports it as soon as CompressAI has been imported.
"""

from __future__ import annotations

from compressai.registry import MODELS

from compressai_hqa.zoo import hqa_any, hqa_celeba64, hqa_mnist

__all__ = ["ZOO_MODELS", "register"]

#: CompressAI zoo name -> zoo function (CompressAI's signature).
ZOO_MODELS = {
    "hqa": hqa_any,
    "hqa-mnist": hqa_mnist,
    "hqa-celeba64": hqa_celeba64,
}


def register() -> None:
    """Adds the HQA models to CompressAI's zoo tables (idempotent)."""
    import compressai.zoo
    import compressai.zoo.image

    for name, fn in ZOO_MODELS.items():
        compressai.zoo.image_models[name] = fn
        compressai.zoo.models[name] = fn
        # the class register_model put in CompressAI's registry
        compressai.zoo.image.model_architectures[name] = MODELS[name]
