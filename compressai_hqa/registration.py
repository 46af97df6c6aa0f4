"""Makes HQA visible to CompressAI's zoo and evaluation tools.

CompressAI 1.2.8 has no plugin mechanism. Its registry,
``compressai.registry.MODELS``, is filled by ``register_model`` on the model
classes, as for CompressAI's own models (:mod:`compressai_hqa.models`: ``HQA``
for ``hqa``, any config, and the classes bound to one model family, such as
``MnistHQA``, whose ``from_state_dict`` refuses weights of another
architecture). Its zoo and ``eval_model`` look models up in plain dicts
(``compressai.zoo.image_models``, ``compressai.zoo.models``,
``compressai.zoo.image.model_architectures``): :func:`register`, here and
nowhere else, adds HQA to them: ``hqa`` and ``hqa-<family>`` for every model
family of :mod:`compressai_hqa.families` marked ``compressai``. It runs when
``compressai_hqa`` is imported and is idempotent. CompressAI's own scripts never
import this package: the start-up hook that the wheel installs
(``_compressai_hqa_hook``) imports it as soon as CompressAI has been imported.
"""

from __future__ import annotations

from collections.abc import Callable

from compressai.registry import MODELS, register_model

from compressai_hqa.families import FAMILIES, Family, add_family
from compressai_hqa.models import HQA
from compressai_hqa.models.named import named_model
from compressai_hqa.zoo import hqa_any, zoo_function

__all__ = ["ZOO_MODELS", "register", "register_family"]


def _zoo_models() -> dict[str, Callable[..., HQA]]:
    """``hqa`` and ``hqa-<family>`` of every family marked ``compressai``."""
    return {
        "hqa": hqa_any,
        **{
            f"hqa-{f.name}": zoo_function(f.name)
            for f in FAMILIES.values()
            if f.compressai
        },
    }


#: CompressAI zoo name -> zoo function (CompressAI's signature), as of the last
#: :func:`register`.
ZOO_MODELS: dict[str, Callable[..., HQA]] = _zoo_models()


def register() -> None:
    """Adds the HQA models to CompressAI's zoo tables (idempotent)."""
    import compressai.zoo
    import compressai.zoo.image

    ZOO_MODELS.update(_zoo_models())
    for name, fn in ZOO_MODELS.items():
        if name not in MODELS:  # a family added since import
            register_model(name)(named_model(name.removeprefix("hqa-")))
        compressai.zoo.image_models[name] = fn
        compressai.zoo.models[name] = fn
        # the class register_model put in CompressAI's registry
        compressai.zoo.image.model_architectures[name] = MODELS[name]


def register_family(family: Family) -> None:
    """Adds a model family to the registry and, if it is marked ``compressai``,
    to CompressAI's tables (``hqa-<name>``).

    Raises:
        ValueError: another family of that name exists.
    """
    add_family(family)
    register()
