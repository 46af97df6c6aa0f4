"""Training of the MMSE decoders of a trained stack (``python -m
compressai_hqa.training.mmse``).

The stack stays frozen: its argmin codes of the training images are computed
once (:mod:`.codes`), then each layer's decoder is fitted for pixel MSE
(:mod:`.loop`: a resumable training loop, or the table of conditional means),
evaluated against argmin decoding (:mod:`.evaluate`) and the chosen decoders
are written to one weights file (:func:`export`); :mod:`.settings` holds the
options of a run and :mod:`.cli` the command line.
"""

from .codes import code_maps, load_codes
from .evaluate import evaluate_layer
from .loop import export, fit_table, train_layer
from .settings import MMSESettings

__all__ = [
    "MMSESettings",
    "code_maps",
    "evaluate_layer",
    "export",
    "fit_table",
    "load_codes",
    "train_layer",
]
