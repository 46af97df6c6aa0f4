"""A checkpoint written by an older version of the package resumes with this one.

A long training run is continued with ``--resume`` by whatever code is current,
so the checkpoint layout (state-dict keys, ``_extra_state``, the config dict, the
run fingerprint, the order of the optimiser's parameters, the scheduler and RNG
states) must keep working. Two tests, both on checkpoints written by the code of
commit 5719177 (``interrupted_training.py`` interrupts a run after a fixed step):

* the committed checkpoint ``tests/data/resume-5719177/`` resumes and ends where the
  uninterrupted run of that commit ended (``reference/``);
* on the fly, from ``git archive`` of that commit (skipped without git history):
  the old code writes a checkpoint in the middle of a layer and trains an
  uninterrupted reference; this code resumes the checkpoint and must end
  bit-identically.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys

from pathlib import Path

import pytest
import torch

from conftest import ROOT

from compressai_hqa.training.resume import check_same_run
from compressai_hqa.training.upgrade import recipe_of_first_layout, upgrade_checkpoint

BASE_COMMIT = "5719177"
FIXTURE = ROOT / "tests" / "data" / f"resume-{BASE_COMMIT}"
SCRIPT = ROOT / "tests" / "interrupted_training.py"
OPTIONS = ("--steps", "12", "--batch-size", "16", "--deterministic", "--log-every",
           "1", "--checkpoint-every", "1000", "--eval-images", "64", "--no-progress",
           "--no-tensorboard")  # fmt: skip
LOGGED = ("layer", "step", "loss", "recon", "kl", "commit", "codes_used",
          "temperature", "lr")  # fmt: skip


def _train(
    code: Path, stop_after: int, data_root: Path, output: Path, *extra: str
) -> subprocess.CompletedProcess:
    """``train_hqa.py`` with the package found in ``code``, interrupted after
    training step ``stop_after`` (0: never)."""
    env = {**os.environ, "PYTHONPATH": str(code), "OMP_NUM_THREADS": "1",
           "PYTHONWARNINGS": "ignore"}  # fmt: skip
    cmd = [sys.executable, str(SCRIPT), str(stop_after), "--",
           "--data-root", str(data_root), "--output", str(output), *OPTIONS, *extra]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)


def _tensors(path: Path) -> dict[str, torch.Tensor]:
    state = torch.load(path, weights_only=True)
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


def _rows(path: Path) -> list[list[str]]:
    with path.open(newline="") as f:
        return [[r[c] for c in LOGGED] for r in csv.DictReader(f)]


def test_the_committed_checkpoint_of_5719177_resumes(
    tmp_path: Path, mnist_root: Path
) -> None:
    from interrupted_training import TINY

    from compressai_hqa import HQA

    checkpoint = torch.load(FIXTURE / "checkpoint.pth", weights_only=True)
    assert checkpoint["format"] == "compressai_hqa.train/1"
    assert (checkpoint["layer"], checkpoint["step"], checkpoint["layer_done"]) == (
        2, 5, False,
    )  # fmt: skip
    # what the old code wrote is what this code reads and builds
    names = json.loads((FIXTURE / "names.json").read_text())
    model = HQA(TINY)
    assert list(model.state_dict()) == names["state_dict_keys"]
    assert list(checkpoint["state_dict"]) == names["state_dict_keys"]
    top = [name for name, _ in model.layers[1].named_parameters()]
    assert top == names["optimizer_parameters"]  # the optimiser's parameter order
    state = checkpoint["optimizer"]["state"]
    for i, (_, p) in enumerate(model.layers[1].named_parameters()):
        assert state[i]["exp_avg"].shape == p.shape

    run = tmp_path / "run"
    run.mkdir()
    for name in ("checkpoint.pth", "train_log.csv", "layer_metrics.csv"):
        shutil.copy(FIXTURE / name, run / name)
    proc = _train(ROOT, 0, mnist_root, run, "--config", "tiny", "--resume")
    assert proc.returncode == 0, proc.stderr[-3000:]
    resumed = torch.load(run / "checkpoint.pth", weights_only=True)
    assert (resumed["layer"], resumed["step"], resumed["layer_done"]) == (2, 12, True)
    # the same run, its fingerprint now in the current layout (architecture and
    # recipe apart)
    check_same_run(upgrade_checkpoint(checkpoint)["run"], resumed["run"], run)
    recipe = recipe_of_first_layout(checkpoint["run"]["config"])
    assert resumed["run"]["recipe"] == recipe.to_dict()
    assert resumed["run"]["recipe"]["reset_window"] == 3

    # Ends where the old code's uninterrupted run ended. Layer 1 was frozen in the
    # checkpoint; layer 2 trained 7 more steps: equal here, and within float
    # rounding on a CPU whose kernels round differently.
    reference = _tensors(FIXTURE / "reference" / "model.pth")
    final = _tensors(run / "model.pth")
    assert final.keys() == reference.keys()
    for key, value in reference.items():
        if key.startswith("layers.0.") or not value.is_floating_point():
            assert torch.equal(final[key], value), key
        else:
            torch.testing.assert_close(final[key], value, rtol=1e-4, atol=1e-5)
    rows = _rows(run / "train_log.csv")
    expected = _rows(FIXTURE / "reference" / "train_log.csv")
    assert [r[:2] for r in rows] == [r[:2] for r in expected]  # no row lost or repeated
    assert rows[:17] == expected[:17]  # the rows written before the checkpoint
    for row, ref in zip(rows, expected, strict=True):
        assert [float(v) for v in row[2:]] == pytest.approx(
            [float(v) for v in ref[2:]], rel=1e-3, abs=1e-6
        )


def _base_code(tmp_path: Path) -> Path:
    """The package as of :data:`BASE_COMMIT`, from ``git archive`` (or a skip)."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    check = subprocess.run(
        ["git", "-C", str(ROOT), "cat-file", "-e", f"{BASE_COMMIT}^{{commit}}"],
        capture_output=True,
    )
    if check.returncode != 0:
        pytest.skip(f"commit {BASE_COMMIT} is not in this checkout's history")
    target = tmp_path / "base"
    target.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", BASE_COMMIT, "compressai_hqa"],
        capture_output=True, check=True,
    )  # fmt: skip
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target


def test_a_checkpoint_written_mid_layer_by_5719177_resumes_bit_identically(
    tmp_path: Path, mnist_root: Path
) -> None:
    base = _base_code(tmp_path)
    opts = ("--config", "mnist", "--layers", "2", "--reset", "data")
    reference, run = tmp_path / "reference", tmp_path / "run"
    ref = _train(base, 0, mnist_root, reference, *opts)
    assert ref.returncode == 0, ref.stderr[-3000:]
    old = _train(base, 17, mnist_root, run, *opts)  # layer 2, step 5
    assert old.returncode == 130, old.stderr[-3000:]
    assert "checkpoint saved at layer 2 step 5" in old.stderr
    new = _train(ROOT, 0, mnist_root, run, *opts, "--resume")
    assert new.returncode == 0, new.stderr[-3000:]
    a, b = _tensors(reference / "model.pth"), _tensors(run / "model.pth")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert _rows(reference / "train_log.csv") == _rows(run / "train_log.csv")


def test_start_layer_trains_the_layers_above_init_from_scratch(tmp_path: Path) -> None:
    """``--start-layer 2 --init`` of a 3-layer stack keeps layer 1 and builds
    layers 2-3 freshly, as an ``--init`` holding layer 1 only does."""
    from conftest import tiny_config

    from compressai_hqa import HQA
    from compressai_hqa.recipes import Recipe
    from compressai_hqa.training import TrainSettings
    from compressai_hqa.training.resume import start_of_run

    config = tiny_config(num_layers=3)
    torch.manual_seed(1)
    trained = HQA(config)
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(1.0)  # unlike any fresh initialisation
    full, bottom = tmp_path / "full.pth", tmp_path / "bottom.pth"
    torch.save(trained.state_dict(), full)
    torch.save(trained.truncate(1).state_dict(), bottom)

    def start(init: Path) -> HQA:
        settings = TrainSettings(
            config=config, recipe=Recipe.uniform(3), data_root=tmp_path,
            output=tmp_path / init.stem, start_layer=2, init=init, seed=0,
        )  # fmt: skip
        begun = start_of_run(settings)
        assert begun.layer == 2 and begun.checkpoint is None
        return begun.model

    from_full, from_bottom = start(full).state_dict(), start(bottom).state_dict()
    stored = trained.state_dict()
    parameters = dict(trained.named_parameters())
    for key, value in from_full.items():
        if key == "_extra_state":
            continue
        assert torch.equal(value, from_bottom[key]), key
        if key.startswith("layers.0."):
            assert torch.equal(value, stored[key]), key
        elif key in parameters:
            assert not torch.equal(value, stored[key]), key
