"""compressai_hqa: Hierarchical Quantized Autoencoders (:class:`HQA`) for CompressAI.

Importing the package registers the HQA models with CompressAI (the classes with
CompressAI's ``register_model``, the zoo functions with :func:`register`). Bad
bitstreams and ``.hqa`` files raise :class:`CorruptStreamError` (a
``ValueError``).
"""

import warnings

with warnings.catch_warnings():
    # CompressAI imports torch_geometric, whose import calls torch.jit.script,
    # deprecated (FutureWarning) in recent torch: not the user's concern.
    warnings.filterwarnings(
        "ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning
    )
    import compressai  # noqa: F401

from . import configs, decoding, entropy_models, layers, models, recipes, systems, zoo
from .configs import CELEBA64, MNIST, HQAConfig, LayerConfig
from .decoding import DECODE_MODES, Decoding
from .errors import CorruptStreamError
from .models import HQA
from .registration import register
from .version import __version__

__all__ = [
    "CELEBA64",
    "DECODE_MODES",
    "HQA",
    "MNIST",
    "CorruptStreamError",
    "Decoding",
    "HQAConfig",
    "LayerConfig",
    "__version__",
    "configs",
    "decoding",
    "entropy_models",
    "layers",
    "models",
    "recipes",
    "register",
    "systems",
    "zoo",
]

register()
