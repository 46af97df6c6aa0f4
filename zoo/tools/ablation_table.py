#!/usr/bin/env python3
"""An ablation's table from ``evaluate_zoo.py`` JSON files.

Reads ``<arm>.json`` (codes, MSE, class error, spread) and ``<arm>-rfid.json``
(rFID) for each arm and prints one Markdown table per layer, one row per arm.
An arm's name holds its switches' values, joined by ``-`` (``--columns`` names
them). The reset x loss-scaling ablation of ``zoo/results/ablation/train.sh``
(the default arms) and the entropy-weight ablation of
``zoo/results/ablation-entropy/run.sh``:

    python zoo/tools/ablation_table.py zoo/results/ablation > table.md
    python zoo/tools/ablation_table.py zoo/results/ablation-entropy \
        --arms "0.001 0.01 0.03 0.1" --columns beta_e > table.md
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


def _rfid(extra: dict[str, Any] | None, layer: str, mode: str) -> str:
    """The rFID of ``mode`` at ``layer`` in an ``<arm>-rfid.json``, or "-"."""
    if extra is None or layer not in extra["layers"]:
        return "-"
    value = extra["layers"][layer].get(mode, {}).get("rfid")
    return "-" if value is None else f"{value:.1f} (n={extra['rfid_n']})"


def table(
    folder: Path,
    arms: tuple[str, ...] = ARMS,
    columns: tuple[str, ...] = ("reset", "loss scaling"),
) -> str:
    """Markdown tables, one per layer, one row per arm found in ``folder``.

    Args:
        folder: holds ``<arm>.json`` and ``<arm>-rfid.json``.
        arms: the arms, in row order.
        columns: the switches an arm's name holds (split at its first
            ``len(columns) - 1`` dashes).
    """
    results = {arm: _load(folder, arm) for arm in arms}
    rfids = {arm: _load(folder, f"{arm}-rfid") for arm in arms}
    found = [arm for arm in arms if results[arm] is not None]
    if not found:
        raise SystemExit(f"no ablation results in {folder}")
    first = results[found[0]]
    lines = [
        f"{first['num_images']} held-out training digits ({first['dataset']}); "
        "MSE and class error with argmin decoding; spread: per-pixel standard "
        "deviation over 4 stochastic decodes.",
        "",
    ]
    top_rfid = any(
        "sample-top" in row
        for extra in rfids.values()
        if extra is not None
        for row in extra["layers"].values()
    )
    for layer in sorted(first["layers"], key=int):
        bits = first["layers"][layer]["bits"]
        header = [
            *columns,
            "codes used",
            "code entropy (bits)",
            "posterior entropy (bits)",
            "MSE",
            "class. error",
            "MSE, sampled",
            "decode spread",
            "decode spread, top sampled",
            "rFID, sampled",
        ]
        if top_rfid:
            header.append("rFID, top sampled")
        lines += [
            f"**Layer {layer} ({bits} bits)**",
            "",
            "| " + " | ".join(header) + " |",
            "|" + "---|" * len(header),
        ]
        for arm in found:
            row = results[arm]["layers"][layer]
            c, a, s = row["codes"], row["argmin"], row.get("sample", {})
            rfid = _rfid(rfids[arm], layer, "sample")
            if top_rfid:
                rfid += f" | {_rfid(rfids[arm], layer, 'sample-top')}"
            switches = " | ".join(arm.split("-", len(columns) - 1))
            used = f"{c['codes_used']} / {c['codebook_size']}"
            if "distinct_codes_used" in c:  # near-copies counted once
                used += f" ({c['distinct_codes_used']} distinct)"
            lines.append(
                f"| {switches} | {used} "
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
    p.add_argument(
        "--arms",
        default=" ".join(ARMS),
        help="the arms, space-separated, in row order (default: %(default)s)",
    )
    p.add_argument(
        "--columns",
        default="reset,loss scaling",
        help="comma-separated names of the switches an arm's name holds, joined "
        "by '-' (default: %(default)s)",
    )
    args = p.parse_args()
    print(table(args.folder, tuple(args.arms.split()), tuple(args.columns.split(","))))


if __name__ == "__main__":
    main()
