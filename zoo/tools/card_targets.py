#!/usr/bin/env python3
"""The MNIST model card's targets (issue 9), each met or missed, from the JSON files.

Reads the evaluation files that ``zoo/results/training/mnist-v2/finish.sh`` writes
(all on the 10,000 MNIST test digits) and prints a Markdown table: the target,
the value measured, met or missed, and the file it comes from. With
``--baseline`` (the first stack's results folder) its values sit beside them.

    python zoo/tools/card_targets.py zoo/results/v2 --baseline zoo/results

Targets: every layer uses >= 240 of its 256 codes (also counting near-copies
once) with a code entropy >= 7.5 bits; at 8 bits (layer 5) the classifier errs on
<= 8 % of the argmin and of the stochastic decodes, the argmin MSE is <= 0.040,
the rFID of stochastic decodes on all 10,000 digits is <= 20; and stochastic
decodes differ: their mean per-pixel standard deviation at layer 5 is at least
twice the baseline's (the first stack's were near copies of each other). The
stochastic targets are also judged at the card's decode temperature
(:data:`DECODE_TEMPERATURE` unless ``--temperature`` says otherwise, chosen on
held-out digits in ``zoo/results/temperature/``). A value whose file is missing is
reported as not measured, never as met.
"""

from __future__ import annotations

import argparse
import json
import re
import sys

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The top layer: one code per digit, 8 bits.
TOP = "5"

#: The decode temperature of the card's tempered rows (``zoo/results/temperature/``:
#: the lowest rFID on the held-out training digits).
DECODE_TEMPERATURE = 3


def tempered_file(temperature: float) -> str:
    """The file of the tempered rows: ``evaluate_zoo.py --layers 5 --modes sample
    --rfid-n 10000 --temperature T`` (sampled MSE and class error, spread, rFID on
    all 10,000)."""
    return f"mnist-test-layer5-sample-t{temperature:g}-rfid10k.json"


@dataclass(frozen=True)
class Target:
    """One line of the card's targets.

    Args:
        name: what is promised.
        source: the results file the value comes from (relative to the folder).
        value: reads the value from that file's JSON (``None``: not in it).
        met: whether a value meets the target, given the baseline's value
            (``None``: it cannot tell without one).
        fmt: how the value is printed.
    """

    name: str
    source: str
    value: Callable[[dict[str, Any]], float | None]
    met: Callable[[float, float | None], bool | None]
    fmt: str = ".4f"


def _layer(d: dict[str, Any], mode: str, key: str) -> float | None:
    return d["layers"].get(TOP, {}).get(mode, {}).get(key)


def _spread(d: dict[str, Any]) -> float | None:
    return d["layers"].get(TOP, {}).get("codes", {}).get("spread")


def _fewest_distinct(d: dict[str, Any]) -> float | None:
    """Fewest distinct codes of any layer (``None`` in files written before
    ``distinct_codes_used`` existed)."""
    values = [v.get("distinct_codes_used") for v in d["layers"].values()]
    return None if None in values else min(values)


def targets(temperature: float = DECODE_TEMPERATURE) -> tuple[Target, ...]:
    """The card's targets, the tempered ones at decode temperature
    ``temperature``."""
    tempered, t = tempered_file(temperature), f"{temperature:g}"
    return (
        *_UNTEMPERED,
        Target(
            f"8 bits, temperature {t}: class error, stochastic decoding (<= 8 %)",
            tempered,
            lambda d: _percent(_layer(d, "sample", "class_error")),
            lambda v, _: v <= 8.0,
            ".1f",
        ),
        Target(
            f"8 bits, temperature {t}: rFID n = 10,000, lower layers sampled (<= 20)",
            tempered,
            lambda d: _rfid10k(d, "sample"),
            lambda v, _: v <= 20.0,
            ".1f",
        ),
        Target(
            f"8 bits, temperature {t}: per-pixel spread of stochastic decodes "
            "(>= 2x the baseline's)",
            tempered,
            _spread,
            lambda v, base: None if base is None else v >= 2 * base,
        ),
    )


_UNTEMPERED = (
    Target(
        "fewest codes used by any layer (>= 240 of 256)",
        "code-usage-test.json",
        lambda d: min(v["codes_used"] for v in d["layers"].values()),
        lambda v, _: v >= 240,
        ".0f",
    ),
    Target(
        "fewest distinct codes used by any layer, near-copies once (>= 240 of 256)",
        "code-usage-test.json",
        _fewest_distinct,
        lambda v, _: v >= 240,
        ".0f",
    ),
    Target(
        "lowest code entropy of any layer (>= 7.5 bits)",
        "code-usage-test.json",
        lambda d: min(v["entropy_bits"] for v in d["layers"].values()),
        lambda v, _: v >= 7.5,
        ".2f",
    ),
    Target(
        "8 bits: class error, argmin decoding (<= 8 %)",
        "mnist-test.json",
        lambda d: _percent(_layer(d, "argmin", "class_error")),
        lambda v, _: v <= 8.0,
        ".1f",
    ),
    Target(
        "8 bits: class error, stochastic decoding (<= 8 %)",
        "mnist-test.json",
        lambda d: _percent(_layer(d, "sample", "class_error")),
        lambda v, _: v <= 8.0,
        ".1f",
    ),
    Target(
        "8 bits: MSE, argmin decoding (<= 0.040)",
        "mnist-test.json",
        lambda d: _layer(d, "argmin", "mse"),
        lambda v, _: v <= 0.040,
    ),
    Target(
        "8 bits: rFID n = 10,000, lower layers sampled (<= 20)",
        "mnist-test-layer5-sample-rfid10k.json",
        lambda d: _rfid10k(d, "sample"),
        lambda v, _: v <= 20.0,
        ".1f",
    ),
    Target(
        "8 bits: rFID n = 10,000, top code sampled too (<= 20)",
        "mnist-test-layer5-sample-top-rfid10k.json",
        lambda d: _rfid10k(d, "sample-top"),
        lambda v, _: v <= 20.0,
        ".1f",
    ),
    Target(
        "8 bits: per-pixel spread of stochastic decodes (>= 2x the baseline's)",
        "mnist-test.json",
        _spread,
        lambda v, base: None if base is None else v >= 2 * base,
    ),
)


def baseline_sources(source: str) -> tuple[str, ...]:
    """The baseline's files that may hold the value of a target read from
    ``source``, the first file holding a value winning: the first stack (0.1) keeps
    some values that later folders have in ``mnist-test.json`` elsewhere, and it
    has no tempered decodes, so its values at temperature 1 are the baseline of the
    tempered rows."""
    if source == "mnist-test.json":
        return ("mnist-test.json", "mnist-test-codes.json")
    if re.fullmatch(r"mnist-test-layer5-sample-t[0-9.e+-]+-rfid10k\.json", source):
        return (
            source,
            "mnist-test.json",
            "mnist-test-codes.json",
            "mnist-test-layer5-sample-rfid10k.json",
        )
    return (source,)


TARGETS = targets()


def _percent(v: float | None) -> float | None:
    return None if v is None else 100.0 * v


def _rfid10k(d: dict[str, Any], mode: str) -> float | None:
    if d.get("rfid_n") != 10000:
        return None
    return _layer(d, mode, "rfid")


def read(folder: Path, target: Target, baseline: bool = False) -> float | None:
    """The target's value in ``folder`` (``None`` when it was not measured)."""
    names = baseline_sources(target.source) if baseline else (target.source,)
    for name in names:
        path = folder / name
        if not path.is_file():
            continue
        try:
            value = target.value(json.loads(path.read_text()))
        except (KeyError, TypeError, ValueError) as e:
            raise SystemExit(f"card_targets: {path}: unexpected content ({e!r})") from e
        if value is not None:
            return float(value)
    return None


def table(
    results: Path, baseline: Path | None, temperature: float = DECODE_TEMPERATURE
) -> str:
    """The Markdown table of every target (the tempered ones at
    ``temperature``)."""
    head = ["target", "measured", "met?", "file"]
    if baseline is not None:
        head.insert(1, "first stack")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for t in targets(temperature):
        base = None if baseline is None else read(baseline, t, baseline=True)
        value = read(results, t)
        met = None if value is None else t.met(value, base)
        verdict = {True: "met", False: "missed", None: "needs --baseline"}[met]
        cells = [
            t.name,
            "not measured" if value is None else format(value, t.fmt),
            "not measured" if value is None else verdict,
            f"`{t.source}`",
        ]
        if baseline is not None:
            cells.insert(1, "not measured" if base is None else format(base, t.fmt))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("results", type=Path, help="folder of the stack's result files")
    p.add_argument(
        "--baseline", type=Path, default=None, help="the first stack's results folder"
    )
    p.add_argument(
        "--temperature",
        type=float,
        default=DECODE_TEMPERATURE,
        help="decode temperature of the tempered rows: the stack's card value, "
        f"chosen on held-out digits (default: {DECODE_TEMPERATURE}, v2's)",
    )
    args = p.parse_args(argv)
    if not args.temperature > 0:
        p.error(f"--temperature must be > 0, got {args.temperature}")
    for folder in (args.results, args.baseline):
        if folder is not None and not folder.is_dir():
            p.error(f"not a folder: {folder}")
    sys.stdout.write(table(args.results, args.baseline, args.temperature))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
