"""The shipped MMSE decoders of the pretrained MNIST stack.

They live in their own SHA-256 pinned file beside the stack's weights (a
:class:`~compressai_hqa.models.mmse.MMSEDecoders` state dict, float16, loaded
with ``weights_only=True``); how they were chosen and trained:
``zoo/results/training/mmse/README.md``.
"""

from __future__ import annotations

import functools

from pathlib import Path

from compressai_hqa.models.mmse import MMSEDecoders
from compressai_hqa.models.stack import HQAStack

from .pretrained import PretrainedUnavailableError, load_weights, shipped_weights_path

__all__ = ["PRETRAINED_MMSE", "attach_mmse", "mmse_decoders", "pretrained_mmse"]

# config name -> (file inside the package's ``zoo`` data folder, SHA-256 of the file)
PRETRAINED_MMSE: dict[str, tuple[str, str]] = {
    # layers 1-4: the fine-tuned decoding path; layer 5: the table of the mean
    # training digit of each code (zoo/results/training/mmse/README.md)
    "mnist": (
        "hqa-mnist-mmse-db87e3e6.pth",
        "db87e3e69cf616cb0f997c7e6886b34b4967edca5e822764ce3aa26486f13def",
    ),
}


def pretrained_mmse(stack: HQAStack) -> MMSEDecoders:
    """The shipped MMSE decoders for ``stack``'s layers, in eval mode.

    Args:
        stack: the shipped stack of its config (or a truncation of it).

    Raises:
        PretrainedUnavailableError: none are shipped for the stack's config.
        ValueError: ``stack``'s codes are not those of the shipped stack.
    """
    name = stack.config.name
    if name not in PRETRAINED_MMSE:
        raise PretrainedUnavailableError(
            f"no MMSE decoders are shipped for config {name!r} (shipped: "
            f"{', '.join(sorted(PRETRAINED_MMSE)) or 'none'}); train them with "
            "python -m compressai_hqa.training.mmse"
        )
    filename, sha256 = PRETRAINED_MMSE[name]
    state_dict = load_weights(shipped_weights_path(filename), sha256=sha256)
    return MMSEDecoders.from_state_dict(stack, state_dict).to(stack.device)


def mmse_decoders(stack: HQAStack, source: str | Path | None = None) -> MMSEDecoders:
    """MMSE decoders for ``stack``: from ``source`` (a path or URL of a state
    dict), else the shipped ones (:func:`pretrained_mmse`).

    Raises:
        PretrainedUnavailableError: no ``source`` and none shipped.
        ValueError: not MMSE decoders, or of another stack.
    """
    if source is None:
        return pretrained_mmse(stack)
    state_dict = load_weights(source)
    return MMSEDecoders.from_state_dict(stack, state_dict).to(stack.device)


def attach_mmse(
    stack: HQAStack, source: str | Path | None = None, shipped: bool = True
) -> HQAStack:
    """Attaches MMSE decoders to ``stack``, loaded on its first MMSE decode.

    Args:
        stack: the stack (its truncations keep what is attached).
        source: a path or URL of MMSE decoders (:func:`mmse_decoders`).
        shipped: without ``source``, attach the shipped decoders of the stack's
            config, if there are some (for the shipped weights).

    Returns:
        ``stack``, with :meth:`~compressai_hqa.HQA.set_mmse` done (nothing
        attached when there is no ``source`` and nothing to ship).
    """
    if source is not None:
        stack.set_mmse(functools.partial(mmse_decoders, source=source))
    elif shipped and stack.config.name in PRETRAINED_MMSE:
        stack.set_mmse(pretrained_mmse)
    return stack
