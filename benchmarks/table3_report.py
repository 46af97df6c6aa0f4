"""Paper Table 3, rerun: the report (means and confidence intervals over seeds,
the Markdown table beside the paper's numbers, Figure 3's curves).

Part of ``benchmarks/table3.py`` (see its docstring).
"""

from __future__ import annotations

import math

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from table3_runs import RATES

#: Paper Table 3 (8 bits, MNIST test set, 10 runs): MSE, rFID, class error (%).
PAPER = {
    "none": (0.000, 0.0, 3.13),
    "vqvae": (0.040, 85.9, 21.6),
    "hams": (0.090, 45.6, 29.9),
    "hams-gs": (0.108, 38.6, 51.1),
    "hams-mse": (0.052, 36.0, 11.1),
    "hams-gs-mse": (0.054, 21.0, 10.6),
    "hqa": (0.053, 22.8, 12.4),
}
METRICS = (("mse", "MSE"), ("rfid", "rFID"), ("class_error", "class. error (%)"))


def aggregate(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and 95 % confidence half-width (Student t) over seeds."""
    mean = float(np.mean(values))
    if len(values) < 2:
        return mean, None
    from scipy.stats import t

    half = (
        t.ppf(0.975, len(values) - 1) * np.std(values, ddof=1) / math.sqrt(len(values))
    )
    return mean, float(half)


def _cell(key: str, mean: float, half: float | None) -> str:
    scale, digits = (100.0, 1) if key == "class_error" else (1.0, 1)
    if key.startswith("mse"):
        digits = 4
    text = f"{mean * scale:.{digits}f}"
    return text if half is None else f"{text} ± {half * scale:.{digits}f}"


def _paper(name: str, index: int) -> str:
    row = PAPER.get(name)
    if row is None:
        return "-"
    return f"{row[index]:.3f}" if index == 0 else f"{row[index]:.1f}"


def markdown(report: dict[str, Any]) -> str:
    rows = report["rows"]
    budget = report["budget"]
    steps = budget["steps"] or "each recipe's"
    batch = budget["batch_size"] or "each recipe's"
    lines = [
        "# Paper Table 3, rerun",
        "",
        f"Command: `{report['command']}`  ",
        f"Budget: `{budget['name']}`: {steps} steps per layer, batch {batch}, "
        f"seeds {', '.join(map(str, budget['seeds']))}; "
        f"{report['test_n']} MNIST test digits, rFID on the first "
        f"{report['rfid_n']} (the same for every system).  ",
        f"Hardware: {report['hardware']}. Compute in all: training "
        f"{report['train_s'] / 60:.0f} min, evaluation {report['eval_s'] / 60:.0f} min "
        "(the runs' `layer_metrics.csv` and `eval/*.json`, over every interrupted "
        f"and resumed invocation); this invocation {report['wall_s'] / 60:.0f} min.",
        "",
        "## 8 bits per image (one code per digit): ours beside the paper's",
        "",
        "| System | MSE | paper | rFID | paper | class. error (%) | paper "
        "| decode | MSE (argmin) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        at8 = row["rates"].get("8")
        if at8 is None:
            continue
        cells = [row["label"]]
        for i, (key, _) in enumerate(METRICS):
            value = at8.get(key)
            cells += [_cell(key, *value) if value else "-", _paper(row["name"], i)]
        cells += [row["decode"], _cell("mse", *at8["mse_argmin"])]
        lines.append("| " + " | ".join(cells) + " |")
    for key, label in METRICS:
        lines += [
            "",
            f"## {label} at every rate (Figure 3)",
            "",
            "| System | " + " | ".join(f"{b} bits" for b in RATES) + " |",
            "|---|" + "---|" * len(RATES),
        ]
        for row in rows:
            cells = [row["label"]]
            for bits in RATES:
                value = row["rates"].get(str(bits), {}).get(key)
                cells.append(_cell(key, *value) if value else "-")
            lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Means over the seeds, with the 95 % confidence half-width (Student t) "
        "when there are several. The paper's numbers are its Table 3 (10 runs, "
        "rFID on 10,000 digits, its own classifier). k-means is the fixed-rate "
        "floor: 256 centroids per code on HQA's code grid "
        "(compressai_hqa.baselines.kmeans).",
    ]
    return "\n".join(lines) + "\n"


def plot(report: dict[str, Any], results: Path) -> list[Path]:
    from matplotlib.figure import Figure

    paths = []
    for key, label in METRICS:
        fig = Figure(figsize=(6.0, 4.5), dpi=100)
        ax = fig.subplots()
        for row in report["rows"]:
            points = [
                (int(b), m[key][0]) for b, m in row["rates"].items() if m.get(key)
            ]
            if not points:
                continue
            xs, ys = zip(*sorted(points), strict=True)
            scale = 100.0 if key == "class_error" else 1.0
            if row["name"] == "none":  # the originals: a level at every rate
                ax.axhline(ys[0] * scale, color="black", linestyle=":", linewidth=1,
                           label=row["label"])  # fmt: skip
                continue
            style = "--" if row["name"] == "kmeans" else "-"
            ax.plot(
                xs,
                [y * scale for y in ys],
                style,
                marker="o",
                linewidth=1,
                label=row["label"],
            )
        ax.set_xscale("log", base=2)
        ax.set_xlabel("bits per image")
        ax.set_ylabel(label)
        ax.set_title(f"MNIST test: {label} vs rate")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small")
        fig.tight_layout()
        path = results / f"table3-{key.replace('_', '-')}.png"
        fig.savefig(path)
        paths.append(path)
    return paths


def rows_of(
    per_seed: dict[str, list[dict[int, dict[str, Any]]]],
    labels: dict[str, str],
    decodes: dict[str, str],
) -> list[dict[str, Any]]:
    rows = []
    for name, seeds in per_seed.items():
        rates: dict[str, dict[str, Any]] = {}
        for bits in sorted(seeds[0]):
            metrics = {}
            for key in (*[k for k, _ in METRICS], "mse_argmin"):
                values = [s[bits][key] for s in seeds if key in s[bits]]
                if values:
                    metrics[key] = aggregate(values)
            rates[str(bits)] = metrics
        rows.append(
            {
                "name": name,
                "label": labels[name],
                "decode": decodes[name],
                "seeds": len(seeds),
                "rates": rates,
            }
        )
    return rows
