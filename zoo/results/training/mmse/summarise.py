#!/usr/bin/env python3
"""The tables of this folder's README from its JSON files.

python zoo/results/training/mmse/summarise.py
"""

from __future__ import annotations

import json

from pathlib import Path

HERE = Path(__file__).resolve().parent


def design_table() -> list[str]:
    lines = [
        "| run | layer | kind | lr | steps | held-out MSE | untrained | argmin |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for path in sorted((HERE / "design").glob("*/layer*/metrics.json")):
        m = json.loads(path.read_text())
        init = m.get("heldout_mse_init")
        lines.append(
            f"| `{path.parent.relative_to(HERE)}` | {m['layer']} | "
            f"{m['spec']['kind']} | {m['lr'] if m['steps'] else '-'} | {m['steps']} | "
            f"{m['heldout_mse']:.5f} | {'-' if init is None else f'{init:.5f}'} | "
            f"{m['heldout_mse_argmin']:.5f} |"
        )
    return lines


def result_table() -> list[str]:
    result = json.loads((HERE / "eval.json").read_text())
    lines = [
        "| layer | bits | kind | split | MSE mmse | MSE argmin | change | "
        "class error mmse | class error argmin | float32 MSE |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for layer, entry in sorted(result["layers"].items()):
        run = HERE / "run" / f"layer{layer}-{entry['kind']}" / "metrics.json"
        float32 = json.loads(run.read_text())["heldout_mse"]
        for split in ("heldout", "test"):
            a, m = entry[split]["argmin"], entry[split]["mmse"]
            full = f"{float32:.6f}" if split == "heldout" else "-"
            lines.append(
                f"| {layer} | {entry['bits']} | {entry['kind']} | {split} | "
                f"{m['mse']:.6f} | {a['mse']:.6f} | {m['mse'] / a['mse'] - 1:+.1%} | "
                f"{m['class_error']:.2%} | {a['class_error']:.2%} | {full} |"
            )
    return lines


def speed_table() -> list[str]:
    result = json.loads((HERE / "speed.json").read_text())
    lines = [
        "| layer | kind | argmin ms / digit | mmse ms / digit | ratio |",
        "|---|---|---|---|---|",
    ]
    for r in result["results"]:
        lines.append(
            f"| {r['layer']} | {r['kind']} | {r['argmin_ms_per_image']:.4f} | "
            f"{r['mmse_ms_per_image']:.4f} | {r['ratio']:.3f} |"
        )
    return lines


if __name__ == "__main__":
    for table in (design_table, result_table, speed_table):
        print("\n".join(table()) + "\n")
