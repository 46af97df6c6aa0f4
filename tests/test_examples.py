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


def _targets(*args: str) -> list[list[str]]:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "card_targets.py"), *args],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [line.strip("|").split("|") for line in proc.stdout.splitlines()[2:]]
    return [[c.strip() for c in row] for row in rows]


def _write(folder: Path, name: str, data: dict) -> None:
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(json.dumps(data))


def test_card_targets_judge_each_value_against_its_threshold(tmp_path: Path) -> None:
    def stack(codes: int, entropy: float, error: float, mse: float, rfid: float,
              spread: float) -> Path:  # fmt: skip
        folder = tmp_path / f"stack-{codes}"
        usage = {str(k): {"codes_used": codes + k, "entropy_bits": entropy + k}
                 for k in range(1, 6)}  # fmt: skip
        _write(folder, "code-usage-test.json", {"layers": usage})
        top = {"argmin": {"class_error": error, "mse": mse},
               "sample": {"class_error": error}, "codes": {"spread": spread}}  # fmt: skip
        _write(folder, "mnist-test.json", {"layers": {"5": top}})
        for mode in ("sample", "sample-top"):
            _write(folder, f"mnist-test-layer5-{mode}-rfid10k.json",
                   {"rfid_n": 10000, "layers": {"5": {mode: {"rfid": rfid}}}})  # fmt: skip
        return folder

    good = stack(239, 6.5, 0.079, 0.0399, 19.9, 0.1)
    bad = stack(238, 6.4, 0.081, 0.0401, 20.1, 0.049)
    rows = _targets(str(good), "--baseline", str(bad))
    assert [row[1] for row in rows] == ["239", "7.40", "8.1", "8.1", "0.0401", "20.1",
                                        "20.1", "0.0490"]  # fmt: skip
    assert [row[2] for row in rows] == ["240", "7.50", "7.9", "7.9", "0.0399", "19.9",
                                        "19.9", "0.1000"]  # fmt: skip
    assert {row[3] for row in rows} == {"met"}
    rows = _targets(str(bad), "--baseline", str(good))
    assert {row[3] for row in rows} == {"missed"}
    # without a baseline the spread cannot be judged; a missing file is not met
    (good / "mnist-test-layer5-sample-top-rfid10k.json").unlink()
    verdicts = [row[2] for row in _targets(str(good))]
    assert verdicts[-2:] == ["not measured", "needs --baseline"]


def test_card_targets_of_the_first_stack_are_missed() -> None:
    # the first stack's published files: layer 2 used 20 codes, 25.7 % error
    rows = {row[0]: row[1:] for row in _targets(str(ROOT / "zoo" / "results"))}
    usage = json.loads((ROOT / "zoo/results/code-usage-test.json").read_text())
    fewest = min(v["codes_used"] for v in usage["layers"].values())
    codes = rows["fewest codes used by any layer (>= 240 of 256)"]
    assert codes[:2] == [str(fewest), "missed"]
    assert rows["8 bits: class error, argmin decoding (<= 8 %)"][1] == "missed"
