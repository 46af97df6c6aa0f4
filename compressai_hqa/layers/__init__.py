"""Building blocks of one HQA layer."""

from .decoder import Decoder
from .encoder import Encoder
from .normalization import GlobalNormalization
from .quantizer import ProbabilisticQuantizer, QuantizerOutput, sample_categorical

__all__ = [
    "Decoder",
    "Encoder",
    "GlobalNormalization",
    "ProbabilisticQuantizer",
    "QuantizerOutput",
    "sample_categorical",
]
