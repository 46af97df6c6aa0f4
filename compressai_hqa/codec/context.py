"""Context priors of an HQA stack: the file, the shipped ones, the model of a layer.

A context prior file (``torch.save``, read with ``weights_only=True``) holds one
:class:`~compressai_hqa.entropy_models.ContextModel` per layer of a stack and,
for each layer, the fingerprint of the weights it was fitted for
(:func:`~compressai_hqa.codec.weights_fingerprint` of the stack truncated at
that layer, uniform prior), so that it is never used with other weights::

    {"format": FORMAT, "model": "hqa-mnist",
     "layers": {"<layer>": {"weights": "<32 hex digits>", "model": {...}}},
     "fit": {...}}  # how it was fitted (informative)

The shipped priors live beside the shipped weights, pinned by SHA-256
(:data:`CONTEXT_PRIORS`). ``examples/estimate_context_prior.py`` fits one for
any weights.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from compressai_hqa.codec.fingerprint import model_name, weights_fingerprint
from compressai_hqa.entropy_models import CategoricalCoder, ContextCoder
from compressai_hqa.entropy_models.context import ContextModel
from compressai_hqa.files import atomic_save, load_torch_file
from compressai_hqa.models import HQA

__all__ = [
    "CONTEXT_PRIORS",
    "FORMAT",
    "ContextPrior",
    "context_model",
    "load_context_prior",
    "payload_coder",
    "shipped_context_prior",
]

FORMAT = "compressai_hqa context prior/1"

#: config name -> (file beside the shipped weights, SHA-256 of the file)
CONTEXT_PRIORS: dict[str, tuple[str, str]] = {
    # fitted for hqa-mnist-0da85963.pth on the first 55,000 training digits,
    # chosen on the last 5,000 (zoo/results/context-prior-holdout.md)
    "mnist": (
        "hqa-mnist-context-432a937c.pth",
        "432a937c724d19e494e7345a19b5b9b2534ca9c6338f3f6a40d6eb502336fa52",
    ),
}


@dataclass(frozen=True)
class ContextPrior:
    """The context models of the layers of one stack.

    Attributes:
        name: the model name, e.g. ``"hqa-mnist"``.
        layers: layer -> its context model.
        weights: layer -> fingerprint (16 bytes) of the weights it was fitted for.
        fit: how it was fitted (plain values, informative).
    """

    name: str
    layers: Mapping[int, ContextModel]
    weights: Mapping[int, bytes]
    fit: Mapping[str, Any] = field(default_factory=dict)

    def model_for(self, layer: int, fingerprint: bytes) -> ContextModel:
        """The context model of ``layer`` if it was fitted for these weights.

        Raises:
            ValueError: no model for this layer, or one fitted for other weights.
        """
        if layer not in self.layers:
            raise ValueError(f"the context prior of {self.name} has no layer {layer}")
        if self.weights[layer] != fingerprint:
            raise ValueError(
                f"the context prior of {self.name} at layer {layer} was fitted for "
                "other weights; fit one for these (examples/estimate_context_prior.py)"
            )
        return self.layers[layer]

    def state(self) -> dict[str, Any]:
        """The file's contents (plain values and int64 tensors)."""
        return {
            "format": FORMAT,
            "model": self.name,
            "layers": {
                str(layer): {"weights": self.weights[layer].hex(), "model": m.state()}
                for layer, m in sorted(self.layers.items())
            },
            "fit": dict(self.fit),
        }

    def save(self, path: str | Path) -> None:
        """Writes the file atomically."""
        atomic_save(self.state(), path)


def _from_state(state: Any) -> ContextPrior:
    if not isinstance(state, Mapping) or state.get("format") != FORMAT:
        raise ValueError("not a compressai_hqa context prior file")
    layers, weights = {}, {}
    try:
        for key, entry in state["layers"].items():
            layer = int(key)
            weights[layer] = bytes.fromhex(entry["weights"])
            layers[layer] = ContextModel.from_state(entry["model"])
        return ContextPrior(str(state["model"]), layers, weights, state.get("fit", {}))
    except (KeyError, TypeError, AttributeError) as err:
        raise ValueError(f"corrupt context prior file: {err!r}") from None


def load_context_prior(path: str | Path, sha256: str | None = None) -> ContextPrior:
    """A context prior file (``weights_only=True``; SHA-256 checked when given).

    Raises:
        FileNotFoundError: no such file.
        RuntimeError: the SHA-256 differs.
        ValueError: not a valid context prior file.
    """
    return _from_state(load_torch_file(path, sha256))


@lru_cache(maxsize=4)
def shipped_context_prior(config_name: str) -> ContextPrior | None:
    """The shipped context prior of a config (SHA-256 checked), or None."""
    if config_name not in CONTEXT_PRIORS:
        return None
    from compressai_hqa.zoo.pretrained import shipped_weights_path

    filename, sha256 = CONTEXT_PRIORS[config_name]
    return load_context_prior(shipped_weights_path(filename), sha256)


def context_model(
    model: HQA, context_prior: ContextPrior | str | Path | None = None
) -> ContextModel:
    """The context model of ``model``'s top layer, fitted for its weights.

    Args:
        model: the HQA stack, truncated at the layer to code.
        context_prior: a :class:`ContextPrior`, its file, or None for the
            shipped one of the model's config.

    Returns:
        The layer's context model.

    Raises:
        ValueError: no context prior (for this layer, for these weights).
    """
    if isinstance(context_prior, (str, Path)):
        context_prior = load_context_prior(context_prior)
    if context_prior is None:
        context_prior = shipped_context_prior(model.config.name)
    if context_prior is None:
        raise ValueError(
            f"no context prior is shipped for {model_name(model)}: fit one with "
            "examples/estimate_context_prior.py and pass it (--context-prior)"
        )
    fingerprint = weights_fingerprint(model, "uniform")
    return context_prior.model_for(model.num_layers, fingerprint)


def payload_coder(
    model: HQA, prior: str, context_prior: ContextPrior | str | Path | None = None
) -> tuple[CategoricalCoder | ContextCoder, bytes]:
    """The coder of ``prior`` for ``model``'s codes, and the files' fingerprint.

    Args:
        model: the HQA stack, truncated at the layer to code.
        prior: ``"uniform"``, ``"learned"`` or ``"context"``.
        context_prior: the context prior (see :func:`context_model`).

    Returns:
        The coder and the fingerprint of files coded with it.

    Raises:
        ValueError: unknown prior, or none of that kind for these weights.
    """
    if prior != "context":
        return model.coder(prior), weights_fingerprint(model, prior)
    context = context_model(model, context_prior)
    return ContextCoder(context), weights_fingerprint(model, prior, context)
