"""Building blocks of one HQA layer."""

from .decoder import Decoder
from .encoder import Encoder
from .normalization import GlobalNormalization
from .quantizer import (
    QUANTIZE_MODES,
    ProbabilisticQuantizer,
    QuantizerOutput,
    sample_categorical,
)

__all__ = [
    "QUANTIZE_MODES",
    "Decoder",
    "Encoder",
    "GlobalNormalization",
    "ProbabilisticQuantizer",
    "QuantizerOutput",
    "sample_categorical",
]
