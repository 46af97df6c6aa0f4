"""Tests of the model card's tools in ``zoo/tools/`` (and of
``examples/estimate_prior.py``), on random stacks."""

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

TOOLS = ROOT / "zoo" / "tools"
EXAMPLES = ROOT / "examples"


def _run(
    data_root: Path, *args: str, script: Path = TOOLS / "evaluate_zoo.py"
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(script), "--data-root", str(data_root), *args],
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
        mnist_root, "--weights", str(weights), "--output", str(out), "--kmeans", "20",
        script=TOOLS / "code_usage.py",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    usage = json.loads(out.read_text())
    assert usage["num_images"] == TEST_COUNT and set(usage["layers"]) == {"1", "2"}
    assert usage["kmeans_images"] == 20
    for row in usage["layers"].values():
        assert 0 < row["kmeans_entropy_bits"] <= 4  # log2 K
        assert 1 <= row["distinct_codes_used"] <= row["codes_used"]


def test_kmeans_entropy_is_low_where_the_latent_repeats() -> None:
    """On black images every interior position of layer 1 sees the same input, so
    the k-means codes of z_e are few and uneven; on noise they spread over all K."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("code_usage", TOOLS / "code_usage.py")
    assert spec is not None and spec.loader is not None
    code_usage = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(code_usage)
    torch.manual_seed(0)
    layer_1 = HQA(tiny_config(num_layers=1, codebook_size=16)).eval()
    black = code_usage.kmeans_entropy_bits(layer_1, torch.zeros(20, 1, 32, 32))
    noise = code_usage.kmeans_entropy_bits(layer_1, torch.rand(20, 1, 32, 32))
    assert black < 2.0 < 3.5 < noise <= 4.0, (black, noise)


def test_estimate_prior_stores_a_prior_that_saves_bits(
    tmp_path: Path, mnist_root: Path
) -> None:
    torch.manual_seed(0)
    weights = tmp_path / "tiny.pth"
    torch.save(HQA(tiny_config(num_layers=2, codebook_size=16)).state_dict(), weights)
    out, rates = tmp_path / "with-prior.pth", tmp_path / "rates.json"
    proc = _run(mnist_root, "--weights", str(weights), "--output", str(out),
                "--json", str(rates),
                "--num-images", "300", script=EXAMPLES / "estimate_prior.py")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    model = HQA.from_state_dict(torch.load(out, weights_only=True))
    assert sorted(model.code_priors) == [1, 2]
    result = json.loads(rates.read_text())
    assert result["num_images"] == 300
    for layer in ("1", "2"):
        row = result["layers"][layer]
        assert row["uniform"]["payload_bits_per_digit"] == {"1": 1024, "2": 256}[layer]
        assert row["saved"]["learned"] >= 0  # a random stack uses its codes unevenly
        assert "context" not in row  # no context prior for these weights


def _targets(*args: str) -> list[list[str]]:
    proc = subprocess.run(
        [sys.executable, str(TOOLS / "card_targets.py"), *args],
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
        usage = {str(k): {"codes_used": codes + k, "distinct_codes_used": codes + k,
                          "entropy_bits": entropy + k}
                 for k in range(1, 6)}  # fmt: skip
        _write(folder, "code-usage-test.json", {"layers": usage})
        top = {"argmin": {"class_error": error, "mse": mse},
               "sample": {"class_error": error}, "codes": {"spread": spread}}  # fmt: skip
        _write(folder, "mnist-test.json", {"layers": {"5": top}})
        for mode in ("sample", "sample-top"):
            _write(folder, f"mnist-test-layer5-{mode}-rfid10k.json",
                   {"rfid_n": 10000, "layers": {"5": {mode: {"rfid": rfid}}}})  # fmt: skip
        tempered = {"class_error": error, "rfid": rfid}
        _write(folder, "mnist-test-layer5-sample-t3-rfid10k.json",
               {"rfid_n": 10000, "temperature": 3, "layers": {"5": {
                   "sample": tempered, "codes": {"spread": spread}}}})  # fmt: skip
        return folder

    good = stack(239, 6.5, 0.079, 0.0399, 19.9, 0.1)
    bad = stack(238, 6.4, 0.081, 0.0401, 20.1, 0.049)
    rows = _targets(str(good), "--baseline", str(bad))
    assert [row[1] for row in rows] == ["239", "239", "7.40", "8.1", "8.1", "0.0401", "20.1",
                                        "20.1", "0.0490", "8.1", "20.1", "0.0490"]  # fmt: skip
    assert [row[2] for row in rows] == ["240", "240", "7.50", "7.9", "7.9", "0.0399", "19.9",
                                        "19.9", "0.1000", "7.9", "19.9", "0.1000"]  # fmt: skip
    assert {row[3] for row in rows} == {"met"}
    rows = _targets(str(bad), "--baseline", str(good))
    assert {row[3] for row in rows} == {"missed"}
    # without a baseline the spread cannot be judged; a missing file is not met
    (good / "mnist-test-layer5-sample-top-rfid10k.json").unlink()
    verdicts = [row[2] for row in _targets(str(good))]
    assert verdicts[7:9] == ["not measured", "needs --baseline"]
    assert verdicts[9:] == ["met", "met", "needs --baseline"]


def test_card_targets_read_the_tempered_rows_at_the_given_temperature(
    tmp_path: Path,
) -> None:
    top = {"sample": {"class_error": 0.05, "rfid": 12.5}, "codes": {"spread": 0.2}}
    _write(tmp_path, "mnist-test-layer5-sample-t2.5-rfid10k.json",
           {"rfid_n": 10000, "layers": {"5": top}})  # fmt: skip
    rows = _targets(str(tmp_path), "--temperature", "2.5")
    tempered = [row for row in rows if "temperature 2.5" in row[0]]
    assert [row[1:3] for row in tempered] == [
        ["5.0", "met"],
        ["12.5", "met"],
        ["0.2000", "needs --baseline"],
    ]
    # at the default temperature (3) that file is not the tempered rows' file
    rows = _targets(str(tmp_path))
    assert all(row[1] == "not measured" for row in rows if "temperature 3" in row[0])


def test_card_targets_of_the_first_stack_are_missed() -> None:
    # the first stack's published files: layer 2 used 20 codes, 25.7 % error
    rows = {row[0]: row[1:] for row in _targets(str(ROOT / "zoo" / "results"))}
    usage = json.loads((ROOT / "zoo/results/code-usage-test.json").read_text())
    fewest = min(v["codes_used"] for v in usage["layers"].values())
    codes = rows["fewest codes used by any layer (>= 240 of 256)"]
    assert codes[:2] == [str(fewest), "missed"]
    assert rows["8 bits: class error, argmin decoding (<= 8 %)"][1] == "missed"
    # no tempered decodes: not measured, never met
    tempered = [v for k, v in rows.items() if "temperature" in k]
    assert len(tempered) == 3 and all(v[1] == "not measured" for v in tempered)


def test_the_committed_result_tables_come_from_their_json_files() -> None:
    """zoo/results/{ablation,ablation-entropy,temperature,...}/table.md are what
    their scripts print from the committed evaluations."""
    cases = [
        ("ablation", "ablation_table.py", []),
        ("ablation-entropy", "ablation_table.py",
         ["--arms", "0.001 0.01 0.03 0.1", "--columns", "beta_e"]),
        ("temperature", "temperature_table.py", []),
        ("temperature/v3", "temperature_table.py", []),
        ("ablation-layer1", "ablation_table.py",
         ["--arms", "4 1 0.25", "--columns", "reset_min_distance"]),
    ]  # fmt: skip
    for folder, script, args in cases:
        here = ROOT / "zoo" / "results" / folder
        proc = subprocess.run(
            [sys.executable, str(TOOLS / script), str(here), *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert proc.stdout == (here / "table.md").read_text(), folder


def test_decode_temperature_in_the_card_scripts(
    tmp_path: Path, mnist_root: Path
) -> None:
    """evaluate_zoo.py --temperature records the temperature and decodes with it
    (near 0: the argmin decodes); temperature_table.py lists the runs in order."""
    torch.manual_seed(0)
    weights = tmp_path / "tiny.pth"
    torch.save(HQA(tiny_config(num_layers=2, codebook_size=16)).state_dict(), weights)
    runs = tmp_path / "runs"
    for t in ("1", "1e-06", "3"):
        proc = _run(
            mnist_root, "--weights", str(weights), "--num-images", "20", "--layers",
            "2", "--modes", "argmin,sample", "--seeds", "1", "--rfid-n", "0",
            "--spread-n", "8", "--temperature", t, "--output", str(runs / f"t{t}.json"),
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]
    cold = json.loads((runs / "t1e-06.json").read_text())
    assert cold["temperature"] == 1e-6
    row = cold["layers"]["2"]
    assert row["sample"]["mse"] == row["argmin"]["mse"] and row["codes"]["spread"] == 0
    warm = json.loads((runs / "t1.json").read_text())["layers"]["2"]
    assert warm["codes"]["spread"] > 0
    assert "temperature 3" in (runs / "t3.md").read_text()
    proc = subprocess.run(
        [sys.executable, str(TOOLS / "temperature_table.py"), str(runs)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    rows = [line.split(" | ")[0] for line in lines if line[:3] in ("| 1", "| 3")]
    assert rows == ["| 1e-06", "| 1", "| 3"], proc.stdout
    bad = _run(mnist_root, "--weights", str(weights), "--temperature", "0")
    assert (
        bad.returncode == 2
        and "--temperature must be a finite number > 0" in bad.stderr
    )
