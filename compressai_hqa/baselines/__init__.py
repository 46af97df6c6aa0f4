"""Non-learned reference codecs, scored with the same evaluation as HQA.

:mod:`.kmeans`: the k-means floor of the model card, a fixed-rate code of 8-bit
codes (256 centroids) on the pixels of the whole image (8 bits per image) or of
each tile of HQA's code grid at higher rates (a product code), fitted by
:mod:`.clustering` (k-means++ and Lloyd iterations, many problems at once).
"""

from . import clustering, kmeans
from .kmeans import KMeansCodec, fit_kmeans

__all__ = ["KMeansCodec", "clustering", "fit_kmeans", "kmeans"]
