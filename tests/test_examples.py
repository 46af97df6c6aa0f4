"""Tests of the model card's scripts in ``examples/``, on random stacks."""

from __future__ import annotations

import json
import subprocess
import sys

from pathlib import Path

import torch

from conftest import ROOT, tiny_config
from mnist_subset import TEST_COUNT

from compressai_hqa import HQA
from compressai_hqa.figures.rate_perception import load_results

EXAMPLES = ROOT / "examples"


def _run(
    data_root: Path, *args: str, script: str = "evaluate_zoo.py"
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--data-root", str(data_root), *args],
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_card_numbers_of_a_random_stack(tmp_path: Path, mnist_root: Path) -> None:
    torch.manual_seed(0)
    model = HQA(tiny_config(num_layers=2, codebook_size=16))
    weights = tmp_path / "tiny.pth"
    torch.save(model.state_dict(), weights)
    out = tmp_path / "card.json"
    proc = _run(
        mnist_root, "--weights", str(weights), "--num-images", "40", "--seeds", "2",
        "--rfid-n", "0", "--output", str(out),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    card = json.loads(out.read_text())
    assert card["num_images"] == 40 and card["seeds"] == 2
    assert set(card["layers"]) == {"1", "2"}
    for layer, bits in (("1", 16 * 16 * 4), ("2", 8 * 8 * 4)):
        row = card["layers"][layer]
        assert row["bits"] == bits and row["bpp"] == bits / 1024
        assert len(row["sample"]["runs"]) == 2 and "mse_std" in row["sample"]
        # the real stream: the ideal bits plus the coder's framing
        assert bits <= row["argmin"]["stream_bits"] <= bits + 64 + 32
        assert 0 <= row["argmin"]["class_error"] <= 1
    # the rate-perception figure reads the same file
    (curve,) = load_results([out])
    assert curve["bits"] == [256, 1024]
    # two tables (rates and distortion; what the codes carry), one row per layer
    tables = out.with_suffix(".md").read_text().split("\n\n")[:2]
    for table in tables:
        rows = [line for line in table.splitlines() if line[:3] in ("| 1", "| 2")]
        assert len(rows) == 2, table


def test_argmin_only_and_bad_modes(tmp_path: Path, mnist_root: Path) -> None:
    torch.manual_seed(0)
    weights = tmp_path / "tiny.pth"
    torch.save(HQA(tiny_config(num_layers=2)).state_dict(), weights)
    out = tmp_path / "argmin.json"
    proc = _run(
        mnist_root, "--weights", str(weights), "--num-images", "20", "--layers", "2",
        "--modes", "argmin", "--rfid-n", "0", "--output", str(out),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    row = json.loads(out.read_text())["layers"]["2"]
    assert "sample" not in row and "mse" in row["argmin"]
    bad = _run(mnist_root, "--weights", str(weights), "--modes", "argmin,best")
    assert bad.returncode == 2 and "unknown --modes" in bad.stderr


def test_code_usage_script_reports_every_layer(
    tmp_path: Path, mnist_root: Path
) -> None:
    torch.manual_seed(0)
    model = HQA(tiny_config(num_layers=2, codebook_size=16)).eval()
    weights = tmp_path / "tiny.pth"
    torch.save(model.state_dict(), weights)
    out = tmp_path / "usage.json"
    proc = _run(
        mnist_root, "--weights", str(weights), "--output", str(out),
        script="code_usage.py",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    usage = json.loads(out.read_text())
    assert usage["num_images"] == TEST_COUNT and set(usage["layers"]) == {"1", "2"}


def test_estimate_prior_stores_a_prior_that_saves_bits(
    tmp_path: Path, mnist_root: Path
) -> None:
    torch.manual_seed(0)
    weights = tmp_path / "tiny.pth"
    torch.save(HQA(tiny_config(num_layers=2, codebook_size=16)).state_dict(), weights)
    out, rates = tmp_path / "with-prior.pth", tmp_path / "rates.json"
    proc = _run(mnist_root, "--weights", str(weights), "--output", str(out),
                "--json", str(rates),
                "--num-images", "300", script="estimate_prior.py")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    model = HQA.from_state_dict(torch.load(out, weights_only=True))
    assert sorted(model.code_priors) == [1, 2]
    result = json.loads(rates.read_text())
    assert result["num_images"] == 300
    for layer in ("1", "2"):
        row = result["layers"][layer]
        assert row["uniform"]["payload_bits_per_digit"] == {"1": 1024, "2": 256}[layer]
        assert row["saved"] >= 0  # a random stack uses its codes unevenly
