"""Distortion-end (MMSE) decoders: pixels from one layer's code map, for low MSE.

Argmin decoding re-quantises at every layer below the transmitted one (paper
Algorithm 3): each lower layer decodes to one plausible code map, not to the
average of those the transmitted codes allow, so its squared error is well above
what the codes permit. An MMSE decoder maps the code map (B, h, w) of layer
``l`` straight to the image that minimises the expected squared error given the
codes, learnt from the argmin codes of training images. It reads the same
bitstream; only the decoding differs. Three kinds (:data:`KINDS`):

* ``"path"``: :class:`PathDecoder`, a copy of the layer's decoding path (the
  code embedding of layer ``l``, then the decoders of layers ``l`` to 1) run
  continuously, without re-quantisation, initialised from the stack and
  fine-tuned for pixel MSE.
* ``"net"``: :class:`CodeNet`, a fresh network reading the codes (an embedding
  and a 3x3 convolution per x2 upsampling).
* ``"table"``: :class:`CodeTable`, one image patch per code, the mean of the
  training images whose code it is: the exact MMSE decoder of a 1x1 code map.

:class:`MMSEDecoders` holds one decoder per layer of a stack. Its state dict
carries the kinds and a digest of the stack layers that decide the codes (in
``_extra_state``, plain values), so it loads with ``torch.load(...,
weights_only=True)`` and refuses a stack whose codes it was not trained on.
"""

from .decoders import FORMAT, MMSEDecoders, codes_digest
from .kinds import KINDS, CodeNet, CodeTable, MMSESpec, PathDecoder

__all__ = [
    "FORMAT",
    "KINDS",
    "CodeNet",
    "CodeTable",
    "MMSEDecoders",
    "MMSESpec",
    "PathDecoder",
    "codes_digest",
]
