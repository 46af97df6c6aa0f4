#!/usr/bin/env python3
"""The decode-temperature table from ``evaluate_zoo.py --temperature`` JSON files.

Reads every ``t<T>.json`` in a folder (written by
``zoo/results/temperature/run.sh``: the 8-bit layer, sampled decoding, one seed)
and prints one Markdown row per temperature, lowest first:

    python zoo/tools/temperature_table.py zoo/results/temperature > table.md
"""

from __future__ import annotations

import argparse
import json

from pathlib import Path


def table(folder: Path) -> str:
    """The Markdown table of the ``t<T>.json`` files in ``folder``."""
    runs = [json.loads(p.read_text()) for p in folder.glob("t*.json")]
    if not runs:
        raise SystemExit(f"no t<T>.json files in {folder}")
    runs.sort(key=lambda r: r.get("temperature", 1.0))
    first = runs[0]
    (layer,) = first["layers"]
    lines = [
        f"Layer {layer} ({first['layers'][layer]['bits']} bits), "
        f"{first['num_images']} images ({first['dataset']}), lower layers sampled "
        f"(seed 0); rFID on the first {first['rfid_n']}; spread: per-pixel "
        "standard deviation over 4 stochastic decodes.",
        "",
        "| temperature | MSE, sampled | class. error, sampled | decode spread "
        "| decode spread, top sampled | rFID, sampled |",
        "|---|---|---|---|---|---|",
    ]
    for run in runs:
        row = run["layers"][layer]
        s, c = row["sample"], row["codes"]
        rfid = s.get("rfid")
        lines.append(
            f"| {run.get('temperature', 1.0):g} | {s['mse']:.4f} "
            f"| {100 * s['class_error']:.2f} % | {c['spread']:.4f} "
            f"| {c['spread_top']:.4f} | {'-' if rfid is None else f'{rfid:.1f}'} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folder", type=Path, help="folder with the t<T>.json files")
    print(table(p.parse_args().folder), end="")


if __name__ == "__main__":
    main()
