"""Perception metrics of the HQA paper: rFID and an MNIST classifier's error.

Importing this package loads no network and touches no file: the Inception and
the classifier are loaded by :func:`inception.load_inception` and
:func:`classifier.load_classifier`.
"""

from . import classifier, fid, inception

__all__ = ["classifier", "fid", "inception"]
