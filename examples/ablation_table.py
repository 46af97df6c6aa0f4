#!/usr/bin/env python3
"""The reset x loss-scaling ablation table from ``evaluate_zoo.py`` JSON files.

Reads ``<arm>.json`` (every layer) and ``<arm>-rfid.json`` (rFID at the top
layer) for the four arms of ``zoo/results/ablation/train.sh`` and prints one
Markdown table per layer:

    python examples/ablation_table.py zoo/results/ablation > table.md
"""

from __future__ import annotations

import argparse
import json

from pathlib import Path
from typing import Any

ARMS = ("paper-original", "paper-position", "data-original", "data-position")


def _load(folder: Path, name: str) -> dict[str, Any] | None:
    path = folder / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def table(folder: Path) -> str:
    """Markdown tables, one per layer, one row per arm found in ``folder``."""
    results = {arm: _load(folder, arm) for arm in ARMS}
    rfids = {arm: _load(folder, f"{arm}-rfid") for arm in ARMS}
    found = [arm for arm in ARMS if results[arm] is not None]
    if not found:
        raise SystemExit(f"no ablation results in {folder}")
    first = results[found[0]]
    lines = [
        f"{first['num_images']} held-out training digits ({first['dataset']}); "
        "MSE and class error with argmin decoding; spread: per-pixel standard "
        "deviation over 4 stochastic decodes.",
        "",
    ]
    for layer in sorted(first["layers"], key=int):
        bits = first["layers"][layer]["bits"]
        lines += [
            f"**Layer {layer} ({bits} bits)**",
            "",
            "| reset | loss scaling | codes used | code entropy (bits) "
            "| posterior entropy (bits) | MSE | class. error | MSE, sampled "
            "| decode spread | decode spread, top sampled | rFID, sampled |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for arm in found:
            row = results[arm]["layers"][layer]
            c, a, s = row["codes"], row["argmin"], row.get("sample", {})
            rfid = "-"
            extra = rfids[arm]
            if extra is not None and layer in extra["layers"]:
                value = extra["layers"][layer]["sample"].get("rfid")
                if value is not None:
                    rfid = f"{value:.1f} (n={extra['rfid_n']})"
            reset, scaling = arm.split("-")
            lines.append(
                f"| {reset} | {scaling} | {c['codes_used']} / {c['codebook_size']} "
                f"| {c['entropy_bits']:.2f} | {c['posterior_entropy_bits']:.3f} "
                f"| {a['mse']:.4f} | {100 * a['class_error']:.2f} % "
                f"| {s.get('mse', float('nan')):.4f} | {c.get('spread', 0):.4f} "
                f"| {c.get('spread_top', 0):.4f} | {rfid} |"
            )
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folder", type=Path, help="folder with the arms' JSON files")
    print(table(p.parse_args().folder))


if __name__ == "__main__":
    main()
