"""Building blocks of one HQA layer."""

from .decoder import Decoder
from .ema_quantizer import EMAQuantizer
from .encoder import Encoder
from .gumbel import sample_categorical
from .normalization import GlobalNormalization
from .quantizer import (
    QUANTIZE_MODES,
    ProbabilisticQuantizer,
    QuantizerOutput,
    VectorQuantizer,
)

__all__ = [
    "QUANTIZE_MODES",
    "Decoder",
    "EMAQuantizer",
    "Encoder",
    "GlobalNormalization",
    "ProbabilisticQuantizer",
    "QuantizerOutput",
    "VectorQuantizer",
    "sample_categorical",
]
