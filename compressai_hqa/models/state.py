"""The HQA state dict: the plain values it carries, and loading part of it.

An HQA state dict holds the layers' tensors (``layers.<i>.<module>.<name>``,
``i`` from 0 at the bottom) and ``_extra_state``, plain values only::

    {"format": STATE_DICT_FORMAT, "config": HQAConfig.to_dict(), "num_layers": n,
     "code_priors": {"<layer>": [16-bit frequencies], ...}}  # the last optional

so that ``torch.load(path, weights_only=True)`` reads it and
:meth:`~compressai_hqa.HQA.from_state_dict` rebuilds the model from it alone,
with :func:`load_layers` behind it. Keys and values are a file format: training
checkpoints and shipped weights depend on them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch.nn as nn

from compressai_hqa.configs import HQAConfig

__all__ = [
    "STATE_DICT_FORMAT",
    "config_from_extra_state",
    "extra_state",
    "load_layers",
    "state_dict_config",
    "stored_priors",
    "truncate_state_dict",
]

#: ``_extra_state["format"]`` of an HQA state dict.
STATE_DICT_FORMAT = "compressai_hqa.HQA/1"


def extra_state(
    config: HQAConfig, num_layers: int, code_priors: Mapping[int, Sequence[int]]
) -> dict[str, Any]:
    """The ``_extra_state`` of a stack of ``num_layers`` layers of ``config``."""
    state: dict[str, Any] = {
        "format": STATE_DICT_FORMAT,
        "config": config.to_dict(),
        "num_layers": num_layers,
    }
    if code_priors:
        state["code_priors"] = {str(k): list(v) for k, v in sorted(code_priors.items())}
    return state


def config_from_extra_state(state: Any) -> HQAConfig:
    """The config stored in an ``_extra_state``, or ValueError."""
    if not isinstance(state, Mapping) or state.get("format") != STATE_DICT_FORMAT:
        raise ValueError(
            "not an HQA state dict: '_extra_state' with the model config is missing "
            "(was it saved by compressai_hqa?)"
        )
    try:
        return HQAConfig.from_dict(state["config"])
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"corrupt HQA state dict: bad config ({err})") from None


def state_dict_config(state_dict: Any) -> tuple[HQAConfig, int]:
    """The config and the number of layers stored in an HQA state dict.

    Raises:
        ValueError: not an HQA state dict, or a corrupt one.
    """
    if not isinstance(state_dict, Mapping):
        raise ValueError(
            f"not an HQA state dict: a {type(state_dict).__name__}, not a mapping"
        )
    state = state_dict.get("_extra_state")
    config = config_from_extra_state(state)
    try:
        return config, int(state["num_layers"])
    except (KeyError, TypeError, ValueError):
        raise ValueError("corrupt HQA state dict: bad 'num_layers'") from None


def stored_priors(state: Mapping[str, Any], config: HQAConfig) -> dict[int, Any]:
    """The learnt code priors of an ``_extra_state``: layer -> frequencies."""
    priors = state.get("code_priors") or {}
    if not isinstance(priors, Mapping):
        raise ValueError("corrupt HQA state dict: 'code_priors' is not a mapping")
    out = {}
    for key, freqs in priors.items():
        layer = int(key)
        if layer > config.num_layers or layer < 1:
            raise ValueError(f"corrupt HQA state dict: prior of layer {key}")
        out[layer] = freqs
    return out


def load_layers(model: nn.Module, state_dict: Mapping[str, Any]) -> None:
    """Loads the stored layers of an HQA state dict into an HQA ``model``.

    The model may have fewer layers than stored (the layers above are not
    loaded) or more (the layers above those stored keep their fresh
    initialisation, to train a layer on top of a trained stack); the layers
    both have must have the same architecture. The learnt priors of the loaded
    layers are set too.

    Raises:
        ValueError: a corrupt state dict, or tensors that do not fit ``model``.
    """
    config, stored = state_dict_config(state_dict)
    n = model.num_layers
    tensors = _tensors_below(state_dict, n, stored)
    try:
        missing, unexpected = model.load_state_dict(tensors, strict=False)
    except RuntimeError as err:  # e.g. tensors of the wrong shape
        reason = " ".join(str(err).split())
        raise ValueError(f"corrupt HQA state dict: {reason[:300]}") from None
    if unexpected:
        raise ValueError(f"unexpected keys in HQA state dict: {unexpected[:5]}")
    fresh = tuple(f"layers.{i}." for i in range(stored, n))
    not_fresh = [k for k in missing if k != "_extra_state" and not k.startswith(fresh)]
    if not_fresh:
        raise ValueError(f"missing keys in HQA state dict: {not_fresh[:5]}")
    priors = stored_priors(state_dict["_extra_state"], config)
    for layer, freqs in priors.items():
        if layer <= n:  # priors of layers not built are dropped
            model.set_code_prior(layer, freqs)


def truncate_state_dict(
    state_dict: Mapping[str, Any], num_layers: int
) -> dict[str, Any]:
    """The state dict of the bottom ``num_layers`` stored layers (and their priors).

    Raises:
        ValueError: a corrupt state dict, or ``num_layers`` not in [1, stored].
    """
    config, stored = state_dict_config(state_dict)
    if not 1 <= num_layers <= stored:
        raise ValueError(f"num_layers must be in [1, {stored}], got {num_layers}")
    out = _tensors_below(state_dict, num_layers, stored)
    priors = stored_priors(state_dict["_extra_state"], config)
    kept = {layer: f for layer, f in priors.items() if layer <= num_layers}
    out["_extra_state"] = extra_state(config, num_layers, kept)
    return out


def _tensors_below(
    state_dict: Mapping[str, Any], num_layers: int, stored: int
) -> dict[str, Any]:
    """The tensors of a state dict of ``stored`` layers, without those of the
    layers above ``num_layers``."""
    dropped = tuple(f"layers.{i}." for i in range(num_layers, stored))
    return {
        k: v
        for k, v in state_dict.items()
        if k != "_extra_state" and not k.startswith(dropped)
    }
