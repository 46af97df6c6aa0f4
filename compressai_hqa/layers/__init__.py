"""Building blocks of one HQA layer."""

from .decoder import Decoder
from .encoder import Encoder
from .gumbel import sample_categorical
from .normalization import GlobalNormalization
from .quantizer import QUANTIZE_MODES, ProbabilisticQuantizer, QuantizerOutput

__all__ = [
    "QUANTIZE_MODES",
    "Decoder",
    "Encoder",
    "GlobalNormalization",
    "ProbabilisticQuantizer",
    "QuantizerOutput",
    "sample_categorical",
]
