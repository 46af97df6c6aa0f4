"""Building blocks of one HQA layer."""

from .decoder import Decoder
from .ema_quantizer import EMAQuantizer
from .encoder import Encoder
from .normalization import GlobalNormalization
from .quantizer import ProbabilisticQuantizer
from .training_settings import LOSS_SCALINGS, RESET_RULES, LayerTraining
from .vector_quantizer import QuantizerOutput, VectorQuantizer

__all__ = [
    "LOSS_SCALINGS",
    "RESET_RULES",
    "Decoder",
    "EMAQuantizer",
    "Encoder",
    "GlobalNormalization",
    "LayerTraining",
    "ProbabilisticQuantizer",
    "QuantizerOutput",
    "VectorQuantizer",
]
