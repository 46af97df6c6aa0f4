"""The frontier's table (``frontier.md``, ``frontier.json``) and its three plots."""

from __future__ import annotations

import argparse
import json
import shlex
import sys

from pathlib import Path

__all__ = ["expand_hqa", "write_report"]

METRICS = (
    ("mse", "MSE", False),
    ("rfid", "rFID", False),
    ("class_error", "class error", False),
)


def expand_hqa(rows: list[dict]) -> list[dict]:
    """One row per (HQA layer, decoding, prior); other rows unchanged."""
    out = []
    for row in rows:
        if row["system"] != "hqa":
            out.append(row)
            continue
        for prior, rate in row["priors"].items():
            out.append(
                {
                    **{k: v for k, v in row.items() if k != "priors"},
                    "system": f"hqa ({prior} prior)",
                    "bits": rate["bits"],
                    "ideal_bits": rate["ideal_bits"],
                }
            )
    return out


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _table(rows: list[dict]) -> list[str]:
    lines = [
        "| system | setting | bits / digit (real) | ideal bits | MSE | PSNR (dB) "
        "| class error | rFID |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: (r["system"], r["bits"])):
        lines.append(
            f"| {r['system']} | {r['setting']} | {r['bits']:.1f} | "
            f"{_fmt(r.get('ideal_bits'), '.1f')} | {r['mse']:.4f} | "
            f"{_fmt(r.get('psnr'), '.2f')} | {100 * r['class_error']:.2f} % | "
            f"{_fmt(r.get('rfid'), '.1f')} |"
        )
    return lines


def _plots(rows: list[dict], results: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    systems = sorted({r["system"] for r in rows})
    for key, label, _ in METRICS:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for system in systems:
            pts = sorted(
                (r["bits"], r[key])
                for r in rows
                if r["system"] == system and r.get(key) is not None
            )
            if not pts:
                continue
            style = "o-" if system.startswith("hqa") else "s--"
            ax.plot(*zip(*pts, strict=True), style, label=system, markersize=4)
        ax.set_xscale("log")
        if key == "mse":
            ax.set_yscale("log")
        ax.set_xlabel("bits per digit (real bytes)")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
        fig.tight_layout()
        path = results / f"frontier-{key.replace('_', '-')}.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        paths.append(path)
    return paths


def write_report(rows: list[dict], args: argparse.Namespace, decodings) -> None:
    rows = expand_hqa(rows)
    results: Path = args.results
    results.mkdir(parents=True, exist_ok=True)
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    (results / "frontier.json").write_text(
        json.dumps({"command": command, "rfid_n": args.rfid_n, "rows": rows}, indent=1)
        + "\n"
    )
    lines = [
        "# Rate, distortion and perception on the 10,000 MNIST test digits",
        "",
        f"Written by `{command}` (`benchmarks/frontier.py`).",
        f"rFID on the first {args.rfid_n} digits for every system.",
        "",
        *_table(rows),
        "",
    ]
    (results / "frontier.md").write_text("\n".join(lines))
    for path in _plots(rows, results):
        print(f"wrote {path}")
    print(f"wrote {results / 'frontier.md'}")
