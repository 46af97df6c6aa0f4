"""Zoo functions for HQA image models.

``hqa(layer=...)`` is the natural entry point; :func:`zoo_function` gives a
model family's function with CompressAI's zoo signature (``quality``,
``metric``, ``pretrained``, ``progress``) so that CompressAI's tools can call it
(``hqa_mnist``, ``hqa_celeba64``). Quality rises with rate: quality 1 is the top
layer (fewest bits), quality L the bottom layer.
"""

from __future__ import annotations

import functools
import operator

from collections.abc import Callable
from typing import Any

from compressai_hqa.configs import HQAConfig
from compressai_hqa.families import get_config, get_family
from compressai_hqa.models import HQA, check_compatible

from .mmse import attach_mmse
from .pretrained import load_weights, pretrained_state_dict

__all__ = [
    "hqa",
    "hqa_any",
    "hqa_celeba64",
    "hqa_mnist",
    "layer_for_quality",
    "zoo_function",
]


def hqa(
    layer: int | None = None,
    pretrained: bool = False,
    config: str | HQAConfig | None = None,
    progress: bool = True,
    weights: str | None = None,
    mmse: str | None = None,
) -> HQA:
    """An HQA stack truncated at ``layer`` (the layer whose codes are sent).

    Args:
        layer: 1 (highest rate) to L (lowest rate); default: the top layer
            (of the weights, when weights are loaded).
        pretrained: load the weights shipped with the package (see
            ``zoo/README.md`` for how they were trained and how good they are).
        config: a model family (:mod:`compressai_hqa.families`: ``"mnist"``,
            paper Table 10: 5 layers, 1 channel, 32x32; ``"celeba64"``, paper
            Table 9: 7 layers, 3 channels, 64x64; ...) or an :class:`HQAConfig`.
            Default: the config stored in ``weights``, else ``"mnist"``.
            Weights of another architecture are an error.
        progress: show a progress bar when weights are downloaded.
        weights: a path or URL of a state dict to load instead of the shipped
            weights (URLs are cached by ``torch.hub``); implies ``pretrained``.
        mmse: a path or URL of the MMSE decoders of these weights (from
            ``python -m compressai_hqa.training.mmse``) for ``decoding="mmse"``.
            Default: the shipped weights come with the shipped decoders, if
            their family has some; other weights with none. Loaded on the
            first MMSE decode (:meth:`~compressai_hqa.HQA.set_mmse`).

    Returns:
        The model, in eval mode when weights were loaded.

    Raises:
        ValueError: a layer out of range, or weights that do not match ``config``.
        TypeError: a layer that is not an integer (``2.5``).
    """
    cfg = get_config("mnist" if config is None else config)
    if weights is None and not pretrained:
        if mmse is not None:
            raise ValueError("mmse decoders need trained weights (pretrained=True)")
        _check_layer(layer, cfg.num_layers, cfg.name)
        return HQA(cfg, num_layers=layer)
    if weights is not None:
        state_dict = load_weights(weights, progress=progress)
    else:
        state_dict = pretrained_state_dict(cfg.name, progress=progress)
    model = HQA.from_state_dict(state_dict)
    if weights is None or config is not None:
        check_compatible(model.config, cfg, model.num_layers)
    _check_layer(layer, model.num_layers, "the weights")
    layer = model.num_layers if layer is None else int(layer)
    attach_mmse(model, mmse, shipped=weights is None)
    return model.truncate(layer).eval()


def _check_layer(layer: int | None, num_layers: int, what: str) -> None:
    if layer is None:
        return
    if not 1 <= _integer(layer, "layer") <= num_layers:
        raise ValueError(
            f"layer must be in [1, {num_layers}] for {what} ({num_layers} "
            f"layers), got {layer}"
        )


def _integer(value: Any, what: str) -> int:
    """``value`` as an int, refusing what is not an integer (2.5, "2", True)."""
    if isinstance(value, bool):
        raise TypeError(f"{what} must be an integer, got {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{what} must be an integer, got {value!r}") from None


def layer_for_quality(config: str | HQAConfig, quality: int) -> int:
    """CompressAI quality (1 = lowest rate) to HQA layer (L = lowest rate)."""
    num_layers = get_config(config).num_layers
    if not 1 <= _integer(quality, "quality") <= num_layers:
        raise ValueError(f"quality must be in [1, {num_layers}], got {quality}")
    return num_layers + 1 - int(quality)


def _zoo(
    config: str | HQAConfig,
    quality: int | None,
    metric: str,
    pretrained: bool,
    progress: bool,
    **kw: Any,
) -> HQA:
    if metric != "mse":
        raise ValueError(
            f"HQA models are trained for 'mse' only, got metric={metric!r}"
        )
    layer = None if quality is None else layer_for_quality(config, quality)
    return hqa(layer, pretrained, config, progress, **kw)


def hqa_any(
    quality: int | None = None,
    metric: str = "mse",
    pretrained: bool = False,
    progress: bool = True,
    config: str | HQAConfig = "mnist",
    **kwargs: Any,
) -> HQA:
    """CompressAI's ``hqa`` entry: the HQA of ``config`` (default MNIST).

    ``quality`` 1 is the top layer (lowest rate); None keeps every layer.
    """
    return _zoo(config, quality, metric, pretrained, progress, **kwargs)


@functools.cache
def zoo_function(family: str) -> Callable[..., HQA]:
    """Model family ``family``'s zoo function, with CompressAI's signature.

    The function takes ``quality`` (1, the top layer and the lowest rate, to L),
    ``metric`` (``"mse"`` only), ``pretrained`` (the family's shipped weights),
    ``progress`` and :func:`hqa`'s keywords. One function per family.
    """
    description = get_family(family).description

    def zoo_model(
        quality: int,
        metric: str = "mse",
        pretrained: bool = False,
        progress: bool = True,
        **kwargs: Any,
    ) -> HQA:
        return _zoo(family, quality, metric, pretrained, progress, **kwargs)

    zoo_model.__name__ = zoo_model.__qualname__ = f"hqa_{family.replace('-', '_')}"
    zoo_model.__doc__ = (
        f"HQA of model family {family!r} ({description}) at ``quality`` 1 (the "
        "top layer, fewest bits) .. L (the bottom layer)."
    )
    return zoo_model


#: MNIST HQA (paper Table 10) at ``quality`` 1 (8 bits) .. 5 (2048 bits).
hqa_mnist = zoo_function("mnist")
#: CelebA 64x64 HQA (paper Table 9) at ``quality`` 1 (9 bits) .. 7.
hqa_celeba64 = zoo_function("celeba64")
