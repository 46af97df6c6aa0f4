"""HQA as a CompressAI model (CompressAI name ``hqa``): bitstreams, priors, weights."""

from __future__ import annotations

import operator

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn as nn

from compressai.models import CompressionModel
from compressai.registry import register_model
from torch import Tensor

from compressai_hqa.configs import HQAConfig, check_compatible
from compressai_hqa.decoding import Decoding
from compressai_hqa.entropy_models import CategoricalCoder, UniformCategoricalCoder
from compressai_hqa.errors import CorruptStreamError
from compressai_hqa.families import get_config
from compressai_hqa.models.stack import HQAStack
from compressai_hqa.models.state import (
    config_from_extra_state,
    extra_state,
    load_layers,
    state_dict_config,
    stored_priors,
)

__all__ = ["HQA", "MAX_PIXELS", "PRIORS"]

#: Entropy models of the transmitted codes: the paper's uniform prior, or the
#: static categorical prior learnt from code frequencies (:meth:`HQA.coder`).
PRIORS = ("uniform", "learned")
#: Largest image (H x W) that :meth:`HQA.decompress` accepts, and the largest
#: that an ``.hqa`` file may hold (``docs/format.md``).
MAX_PIXELS = 1 << 26


@register_model("hqa")
class HQA(HQAStack):
    r"""Hierarchical Quantized Autoencoder.

    W. Williams et al., `"Hierarchical Quantized Autoencoders"
    <https://arxiv.org/abs/2002.08111>`_, NeurIPS 2020.

    An :class:`HQAStack` (encode, quantize, decode of paper Algorithms 2 and 3)
    with CompressAI's contract: only the top layer's code indices are
    transmitted, each costing log2 K bits under a uniform prior; ``forward``
    returns ``x_hat`` and the uniform ``likelihoods`` of the codes, ``compress``
    one rANS bitstream per image and ``decompress`` inverts it.
    :meth:`truncate` gives the model of any lower rate. ``compress`` rejects what
    it cannot code (NaN, empty batches, wrong channels, integer images);
    ``decompress`` validates every stream against ``shape`` before the native
    decoder runs and raises :class:`~compressai_hqa.CorruptStreamError` on bad
    data.

    Besides the uniform prior, a model may carry a learnt categorical prior per
    layer (:attr:`code_priors`, saved in the state dict's ``_extra_state``; see
    :meth:`coder`). :meth:`from_state_dict` rebuilds a model from its state dict
    alone (:mod:`compressai_hqa.models.state`).

    Args:
        config: an :class:`HQAConfig` or a config name (``"mnist"``,
            ``"celeba64"``).
        num_layers: build only the first ``num_layers`` layers (default: all).
    """

    def _setup(self, config: HQAConfig, layers: nn.ModuleList) -> None:
        super()._setup(config, layers)
        self.entropy_coder = UniformCategoricalCoder(self.codebook_size)
        self._code_priors: dict[int, tuple[int, ...]] = {}

    # ---------------------------------------------------------- code priors
    @property
    def code_priors(self) -> dict[int, tuple[int, ...]]:
        """Learnt priors: layer (1-based) -> 16-bit code frequencies (a copy)."""
        return dict(self._code_priors)

    def set_code_prior(self, layer: int, frequencies: Sequence[int] | None) -> None:
        """Sets (or with None removes) the learnt prior of the codes of ``layer``.

        Args:
            layer: 1-based layer of this model.
            frequencies: K 16-bit frequencies, each >= 1, summing to 65536
                (:func:`compressai_hqa.entropy_models.quantize_frequencies`).
        """
        if not 1 <= layer <= self.num_layers:
            raise ValueError(f"layer must be in [1, {self.num_layers}], got {layer}")
        if frequencies is None:
            self._code_priors.pop(layer, None)
            return
        coder = CategoricalCoder(frequencies)
        codes = self.config.layers[layer - 1].codebook_size
        if coder.codebook_size != codes:
            raise ValueError(
                f"layer {layer} has {codes} codes, the prior {coder.codebook_size}"
            )
        self._code_priors[layer] = coder.frequencies

    def coder(self, prior: str = "uniform") -> CategoricalCoder:
        """The entropy model of the transmitted (top-layer) codes.

        Args:
            prior: ``"uniform"`` (the paper's, :attr:`entropy_coder`) or
                ``"learned"`` (the static prior in :attr:`code_priors`).

        Raises:
            ValueError: unknown prior, or no learnt prior for the top layer.
        """
        if prior == "uniform":
            return self.entropy_coder
        if prior != "learned":
            raise ValueError(f"prior must be one of {PRIORS}, got {prior!r}")
        freqs = self._code_priors.get(self.num_layers)
        if freqs is None:
            raise ValueError(
                f"these weights carry no learned prior for layer {self.num_layers}; "
                "estimate one with examples/estimate_prior.py"
            )
        return CategoricalCoder(freqs)

    # ------------------------------------------------------------- coding
    def likelihoods(self, indices: Tensor) -> Tensor:
        """The uniform prior's 1/K for every code of ``indices`` (B, h, w), as
        (B, 1, h, w): what :meth:`forward` returns as ``likelihoods["codes"]``."""
        return self.entropy_coder.likelihoods(indices).unsqueeze(1)

    def forward(self, x: Tensor) -> dict[str, Any]:
        """CompressAI forward: argmin codes, deterministic decode, 1/K likelihoods.

        The bpp CompressAI estimates from the likelihoods is exactly the rate
        of :meth:`compress` without the bitstream's framing.
        """
        indices = self.quantize(x)
        x_hat = self.decode(indices, size=x.shape[-2:])
        return {"x_hat": x_hat, "likelihoods": {"codes": self.likelihoods(indices)}}

    def compress(self, x: Tensor) -> dict[str, Any]:
        """Real bitstreams: ``{"strings": [[bytes per image]], "shape": (H, W)}``.

        Raises:
            ValueError: ``x`` is not a non-empty (B, C, H, W) batch with the
                model's channels, or holds NaN or infinite values.
            TypeError: ``x`` is not floating point.
        """
        self._check_image(x)
        if not bool(torch.isfinite(x).all()):
            raise ValueError("images must be finite: found NaN or infinite values")
        indices = self.quantize(x)
        return {
            "strings": [self.entropy_coder.compress(indices)],
            "shape": torch.Size(x.shape[-2:]),
        }

    def decompress(
        self,
        strings: Sequence[Sequence[bytes]],
        shape: Sequence[int],
        decoding: Decoding | str = "argmin",
    ) -> dict[str, Tensor]:
        """Images in [0, 1] from :meth:`compress`'s output.

        Args:
            strings: ``[[bytes per image]]``.
            shape: the original (H, W).
            decoding: how the lower layers re-quantise, or ``"mmse"`` (see
                :meth:`decode`); the same stream decodes by every mode.

        Raises:
            CorruptStreamError: ``strings`` or ``shape`` are malformed, or a
                stream is not a valid stream of the codes of an image of
                ``shape`` (checked before the native decoder runs).
            ValueError: a layer cannot decode by the decoding's mode, or
                ``"mmse"`` without an MMSE decoder (:meth:`set_mmse`).
        """
        decoding = Decoding.of(decoding)
        if (
            not isinstance(strings, (list, tuple))
            or len(strings) != 1
            or not isinstance(strings[0], (list, tuple))
            or not strings[0]
        ):
            raise CorruptStreamError(
                "HQA expects strings=[[bytes per image]] (one latent, at least "
                "one image)"
            )
        height, width = _checked_shape(shape)
        indices = self.entropy_coder.decompress(
            strings[0], self.latent_shape(height, width)
        )
        return {"x_hat": self.decode(indices, decoding, (height, width))}

    # ---------------------------------------------------- CompressAI plumbing
    def aux_loss(self) -> Tensor:
        """HQA has no EntropyBottleneck: a zero tensor on the model's device."""
        return torch.zeros((), device=self.device)

    def update(
        self,
        scale_table: Any = None,
        force: bool = False,
        update_quantiles: bool = False,
    ) -> bool:
        """Nothing to update: the uniform prior needs no learnt CDF."""
        return False

    def truncate(self, num_layers: int) -> HQA:
        """The stack cut at layer ``num_layers`` (sharing this model's modules).

        The codes of layer ``num_layers`` become the transmitted ones, so one
        trained stack gives every rate. Use ``copy.deepcopy`` for independent
        weights. Builds no new layer (and so draws no random numbers). The new
        model's ``training`` flag copies this one's, but the shared layers keep
        their modes: call ``.train()`` or ``.eval()`` on the result to change
        them. Learnt priors of the kept layers and the MMSE decoders
        (:meth:`set_mmse`) are kept.
        """
        if not 1 <= num_layers <= self.num_layers:
            raise ValueError(
                f"num_layers must be in [1, {self.num_layers}], got {num_layers}"
            )
        model = HQA.__new__(HQA)
        CompressionModel.__init__(model)
        model._setup(self.config, nn.ModuleList(self.layers[:num_layers]))
        model._code_priors = {
            k: v for k, v in self._code_priors.items() if k <= num_layers
        }
        model._keep_mmse(self.mmse_source)  # same layers: no need to check
        model.training = self.training  # nn.Module.train() would recurse
        return model

    # ------------------------------------------------------------ state dict
    def get_extra_state(self) -> dict[str, Any]:
        """The config, the number of layers and the learnt priors as plain values
        (saved in the state dict as ``_extra_state``; see
        :mod:`compressai_hqa.models.state`)."""
        return extra_state(self.config, self.num_layers, self._code_priors)

    def set_extra_state(self, state: Any) -> None:
        config = config_from_extra_state(state)
        if config != self.config:
            raise ValueError(
                f"checkpoint is for HQA config {config.name!r} which differs from this "
                f"model's config {self.config.name!r}; build the model with "
                "HQA.from_state_dict(state_dict)"
            )
        self._code_priors = {}
        for layer, freqs in stored_priors(state, config).items():
            if layer <= self.num_layers:  # priors of layers not built are dropped
                self.set_code_prior(layer, freqs)

    @classmethod
    def from_state_dict(
        cls,
        state_dict: Mapping[str, Any],
        num_layers: int | None = None,
        config: HQAConfig | str | None = None,
    ) -> HQA:
        """Rebuilds a model from its state dict alone (the config travels in it).

        Args:
            state_dict: from :meth:`state_dict`, e.g. ``torch.load(path,
                weights_only=True)``.
            num_layers: build this many layers: fewer than stored truncates the
                stack (the layers above are not loaded); layers above those
                stored in the checkpoint are freshly initialised (to train a
                layer on top of a trained stack). Default: as stored.
            config: build the model with this config instead of the stored one;
                the layers loaded must have its architecture (e.g. to stack the
                wider layers of ``mnist-wide`` on a trained ``mnist`` base).

        Raises:
            ValueError: not an HQA state dict, a corrupt one, or ``config`` does
                not fit the stored layers.
        """
        stored_config, stored = state_dict_config(state_dict)
        n = stored if num_layers is None else int(num_layers)
        if config is None:
            config = stored_config
        else:
            config = get_config(config)
            check_compatible(stored_config, config, min(stored, n))
        model = cls(config, num_layers=n)
        load_layers(model, state_dict)
        return model


def _checked_shape(shape: Any) -> tuple[int, int]:
    """(H, W) from a ``decompress`` shape, or CorruptStreamError."""
    try:
        height, width = (operator.index(s) for s in shape)
    except (TypeError, ValueError):
        raise CorruptStreamError(
            f"shape must be two integers (H, W), got {shape!r}"
        ) from None
    if height < 1 or width < 1 or height * width > MAX_PIXELS:
        raise CorruptStreamError(
            f"shape must be (H, W) with H, W >= 1 and H * W <= {MAX_PIXELS}, "
            f"got ({height}, {width})"
        )
    return height, width
