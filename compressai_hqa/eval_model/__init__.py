"""Evaluation of HQA (and any CompressAI model): rate, distortion and perception.

``python -m compressai_hqa.eval_model`` keeps CompressAI's ``eval_model`` command
line and JSON and adds MNIST, ``mse``/``bits``, rFID and the MNIST classifier's
error (``__main__`` parses the arguments, :mod:`.run` runs them). The pieces are
usable from Python:
:func:`load_eval_images`, :func:`evaluate` and :mod:`.rfid`.
"""

from .data import EvalImages, load_eval_images
from .evaluate import EvalOptions, EvalResult, code_batch, evaluate, image_metrics

__all__ = [
    "EvalImages",
    "EvalOptions",
    "EvalResult",
    "code_batch",
    "evaluate",
    "image_metrics",
    "load_eval_images",
]
