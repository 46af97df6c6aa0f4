"""compressai_hqa: Hierarchical Quantized Autoencoders as a CompressAI plugin.

Reference: W. Williams, S. Ringer, T. Ash, J. Hughes, D. MacLeod, J. Dougherty,
"Hierarchical Quantized Autoencoders", NeurIPS 2020.

Importing the package registers the HQA models with CompressAI
(:func:`compressai_hqa.register`). Bad bitstreams and ``.hqa`` files raise
:class:`CorruptStreamError` (a ``ValueError``).
"""

from . import configs, entropy_models, layers, models, zoo
from .configs import CELEBA64, MNIST, HQAConfig, LayerConfig
from .errors import CorruptStreamError
from .models import HQA
from .registration import register
from .version import __version__

__all__ = [
    "CELEBA64",
    "HQA",
    "MNIST",
    "CorruptStreamError",
    "HQAConfig",
    "LayerConfig",
    "__version__",
    "configs",
    "entropy_models",
    "layers",
    "models",
    "register",
    "zoo",
]

register()
