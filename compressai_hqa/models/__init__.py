"""HQA models: the layer, the stack, the CompressAI model and its state dict.

Importing this package registers ``hqa``, ``hqa-mnist`` and ``hqa-celeba64`` in
CompressAI's registry (``compressai.registry.MODELS``) with CompressAI's
``register_model``, as CompressAI's own models are.
"""

from compressai_hqa.configs import check_compatible

from .hqa import HQA, PRIORS
from .layer import HQALayer, LayerOutput
from .named import CelebA64HQA, MnistHQA
from .stack import HQAStack
from .state import state_dict_config, truncate_state_dict

__all__ = [
    "HQA",
    "PRIORS",
    "CelebA64HQA",
    "HQALayer",
    "HQAStack",
    "LayerOutput",
    "MnistHQA",
    "check_compatible",
    "state_dict_config",
    "truncate_state_dict",
]
