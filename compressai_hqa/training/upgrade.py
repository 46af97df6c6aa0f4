"""Checkpoints of the first layout, read as the current one.

In the first checkpoint layout one config dict held the architecture and the
recipe: the run fingerprint's ``"config"`` and the model's ``_extra_state``
config carried the recipe's keys (:data:`RECIPE_KEYS`) and there was no
``"recipe"``. :func:`upgrade_checkpoint` rewrites such a checkpoint in memory so
that a run interrupted then resumes; weights files of that layout are not read.
"""

from __future__ import annotations

from typing import Any

from compressai_hqa.recipes import LayerRecipe, Recipe

__all__ = ["RECIPE_KEYS", "recipe_of_first_layout", "upgrade_checkpoint"]

#: The recipe's keys in a first-layout config dict: top level, per layer.
RECIPE_KEYS = (
    (
        "lr",
        "lr_final_ratio",
        "lr_flat_fraction",
        "grad_clip",
        "temp_start",
        "temp_end",
        "reset_window",
        "reset_threshold",
        "reset_fraction",
        "reset_noise",
        "reset_rule",
        "loss_scaling",
    ),
    ("beta_entropy", "beta_commit", "steps", "batch_size"),
)


def recipe_of_first_layout(config: dict[str, Any]) -> Recipe:
    """The recipe held by a first-layout config dict.

    Raises:
        ValueError: ``config`` is not such a dict.
    """
    top_keys, layer_keys = RECIPE_KEYS
    try:
        shared = {k: config[k] for k in top_keys if k in config}
        lr = shared.pop("lr", 4e-4)
        layers = tuple(
            LayerRecipe(lr=lr, **{k: layer[k] for k in layer_keys if k in layer})
            for layer in config["layers"]
        )
        return Recipe(layers=layers, **shared)
    except (KeyError, TypeError) as err:
        raise ValueError(f"not a first-layout HQA config dict ({err})") from None


def architecture_of_first_layout(config: dict[str, Any]) -> dict[str, Any]:
    """A first-layout config dict without its recipe's keys."""
    top_keys, layer_keys = RECIPE_KEYS
    out = {k: v for k, v in config.items() if k not in top_keys}
    out["layers"] = [
        {k: v for k, v in layer.items() if k not in layer_keys}
        for layer in config.get("layers", ())
    ]
    return out


def upgrade_checkpoint(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """``checkpoint`` in the current layout (the same object if it is already).

    A first-layout checkpoint (a run fingerprint without ``"recipe"``) gets the
    recipe split out of its fingerprint's config and its model config reduced
    to the architecture.
    """
    run = checkpoint.get("run")
    if not isinstance(run, dict) or "recipe" in run or "config" not in run:
        return checkpoint
    try:
        recipe = recipe_of_first_layout(run["config"])
        extra = dict(checkpoint["state_dict"]["_extra_state"])
        extra["config"] = architecture_of_first_layout(extra["config"])
    except (KeyError, TypeError, ValueError):
        return checkpoint  # not a first-layout checkpoint: the caller's checks fail
    run = {
        **run,
        "config": architecture_of_first_layout(run["config"]),
        "recipe": recipe.to_dict(),
    }
    state_dict = {**checkpoint["state_dict"], "_extra_state": extra}
    return {**checkpoint, "run": run, "state_dict": state_dict}
