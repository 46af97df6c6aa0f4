#!/usr/bin/env python3
"""The distortion-perception trade-off of one bitstream: every decoding, every rate.

For each layer of the shipped MNIST stack, decodes the argmin codes of the
10,000 test digits with ``mmse`` (the shipped MMSE decoders), ``argmin``,
``average`` (the mean of 8 sampled decodes) and ``sample`` at temperatures 1,
2, 3 and 5, and measures MSE, PSNR, the error of the shipped MNIST classifier,
the per-pixel spread of 4 decodes of the first 1,000 digits and, with
``--rfid``, rFID (n = 10,000 at the top layer, 1,000 elsewhere; ``--rfid-n``
overrides). Writes under ``--report``: ``tradeoff.md`` (the table and the
issue's targets, cells not yet measured marked so), ``tradeoff-card.md`` (the
model card's summary), ``tradeoff.json``, one
figure per rate (MSE against rFID, with 256-centroid k-means and the paper's
HQA where they have a point: ``tradeoff-<bits>bits.png``) and
``tradeoff-digits.png`` (8 digits: the originals, then at 8 and 32 bits the
mmse and argmin decodes and 4 samples at the chosen temperature).

Each row's result is a JSON file under ``--output`` (``rows/``), written when it
is done: rerunning skips finished rows and rFIDs. The originals' Inception
features are cached (:func:`compressai_hqa.eval_model.rfid.reference_features`).

    python benchmarks/tradeoff.py --data-root ../shared/data --output ~/runs/tradeoff
    python benchmarks/tradeoff.py --data-root ../shared/data --output ~/runs/tradeoff \\
        --rfid --layers 5,4 --report benchmarks/results/tradeoff
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys

from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tradeoff_report import card, figure, figure_n, markdown, rfid_n, targets
from tradeoff_rows import (
    DECODES,
    Row,
    decode_row,
    load_row,
    measure_rfid,
    measure_row,
    save_row,
)

from compressai_hqa import HQA
from compressai_hqa.eval_model.data import EvalImages, load_eval_images
from compressai_hqa.figures.grid import GridLayout, render_grid
from compressai_hqa.files import atomic_write

ROOT = Path(__file__).resolve().parents[1]
#: The card's decode temperature, chosen on held-out digits
#: (zoo/results/temperature/v3/README.md).
CHOSEN = "sample-t3"


def _ints(text: str) -> list[int]:
    return [int(t) for t in text.split(",") if t]


def _shown(path: str) -> str:
    """``path`` relative to the repository when it is inside it."""
    resolved = Path(path).resolve()
    return str(resolved.relative_to(ROOT)) if resolved.is_relative_to(ROOT) else path


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-root", default="../shared/data", help="holds MNIST/raw")
    p.add_argument("--output", default=str(Path.home() / "runs" / "tradeoff"))
    p.add_argument("--report", default=None, help="report folder (default: output)")
    p.add_argument("--layers", type=_ints, default=None, help="e.g. 5,4 (all)")
    p.add_argument("--decodes", default=",".join(DECODES), help="rows to measure")
    p.add_argument("--rfid", action="store_true", help="measure rFID too")
    p.add_argument("--rfid-n", type=int, default=None, help="rFID images, all rows")
    p.add_argument("--num-images", type=int, default=None, help="first N digits")
    p.add_argument("--seed", type=int, default=0, help="seed of the draws")
    p.add_argument("--report-only", action="store_true", help="measure nothing")
    p.add_argument("--kmeans", default=str(ROOT / "zoo/results/kmeans/mnist-test.json"))
    p.add_argument(
        "--speed", default=str(ROOT / "benchmarks/results/tradeoff/speed.json")
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    return p


def _measure(
    args: argparse.Namespace, stack: HQA, images: EvalImages, rows: list[Row]
) -> None:
    from compressai_hqa.metrics.classifier import load_classifier

    output, progress = Path(args.output), not args.quiet
    classifier, inception, references = load_classifier(), None, {}
    x = images.images
    for row in rows:
        result = load_row(output, row)
        if result is None:
            result = measure_row(stack, row, x, images.labels, classifier, progress)
            save_row(output, row, result)
            print(f"{row.name}: MSE {result['mse']:.4f}", file=sys.stderr)
        n = min(rfid_n(row.layer, stack.num_layers, args.rfid_n), len(x))
        if not args.rfid or str(n) in result["rfid"]:
            continue
        same = _argmin_twin(stack, row, x, n, output)
        if same is not None:  # the very pixels of the argmin row: its rFID
            result["rfid"][str(n)] = same
            save_row(output, row, result)
            print(
                f"{row.name}: argmin's pixels, rFID (n={n}) {same:.2f}", file=sys.stderr
            )
            continue
        if inception is None:
            from compressai_hqa.metrics.inception import load_inception

            inception = load_inception("cpu")
        if n not in references:
            from compressai_hqa.eval_model.rfid import reference_features

            references[n] = reference_features(images, n, inception, progress)
        fid = measure_rfid(stack, row, x, n, references[n], inception, progress)
        result["rfid"][str(n)] = fid
        save_row(output, row, result)
        print(f"{row.name}: rFID (n={n}) {fid:.2f}", file=sys.stderr)


def _argmin_twin(
    stack: HQA, row: Row, x: torch.Tensor, n: int, output: Path
) -> float | None:
    """The argmin row's rFID at ``n`` if ``row`` decodes the first ``n`` digits to
    exactly its pixels (a sampled decode of layer 1, which has no layer below to
    sample), else None."""
    if row.decode == "argmin":
        return None
    twin = Row(row.layer, "argmin", row.seed)
    mine, theirs = load_row(output, row) or {}, load_row(output, twin) or {}
    fid = (theirs.get("rfid") or {}).get(str(n))
    if fid is None or mine.get("mse") != theirs.get("mse"):  # other pixels
        return None
    pixels = [decode_row(stack, r, x, n) for r in (row, twin)]
    return fid if torch.equal(*pixels) else None


@torch.no_grad()
def picture(stack: HQA, images: torch.Tensor, path: Path, count: int = 8) -> None:
    """Originals; then at 8 and 32 bits mmse, argmin and 4 samples at CHOSEN."""
    x = images[:count]
    rows, labels = [x], ["original"]
    for layer in (stack.num_layers, stack.num_layers - 1):
        model = stack.truncate(layer)
        codes, bits = model.quantize(x), model.bits(*x.shape[-2:])
        sampled = Row(layer, CHOSEN).decoding().bound()
        for name, decoding in (("mmse", "mmse"), ("argmin", "argmin")):
            rows.append(model.decode(codes, decoding, x.shape[-2:]))
            labels.append(f"{bits} bits\n{name}")
        for i in range(4):
            rows.append(model.decode(codes, sampled, x.shape[-2:]))
            labels.append(f"{bits} bits\nT={sampled.temperature:g} #{i + 1}")
    render_grid(rows, GridLayout(2, 2, label_width=70), labels).save(path)


def report(args: argparse.Namespace, stack: HQA, images: EvalImages) -> None:
    output = Path(args.output)
    folder = Path(args.report or output)
    folder.mkdir(parents=True, exist_ok=True)
    layers = list(range(1, stack.num_layers + 1))
    results = {
        (k, d): load_row(output, Row(k, d, args.seed)) for k in layers for d in DECODES
    }
    kmeans = json.loads(Path(args.kmeans).read_text()) if args.kmeans else None
    speed = None
    if args.speed and Path(args.speed).is_file():
        speed = json.loads(Path(args.speed).read_text())
    size = images.images.shape[-2:]
    bits = {k: stack.truncate(k).bits(*size) for k in layers}
    for layer in layers:
        n = figure_n(results, layer, rfid_n(layer, stack.num_layers, args.rfid_n))
        path = folder / f"tradeoff-{bits[layer]}bits.png"
        figure(results, layer, bits[layer], n, DECODES, kmeans, path)
    picture(stack, images.images, folder / "tradeoff-digits.png")
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    text = [
        "# The distortion-perception trade-off of one bitstream (MNIST test digits)",
        "",
        f"Written by `{command}` from the row files of `{args.output}`.",
        f"{len(images)} test digits; the top code is the argmin code; **{CHOSEN}** "
        "is the card's decode temperature (chosen on held-out digits). spread: "
        "per-pixel standard deviation of 4 decodes of the first 1,000 digits. "
        "rFID: pytorch-fid's Inception, one seeded decode; compare equal n only. "
        "Layer 1 has no layer below to sample: its sampled rows are argmin's.",
        "",
        markdown(results, bits, DECODES, CHOSEN),
        "## Targets",
        "",
        targets(results, bits, CHOSEN, speed),
        f"Speed: from `{_shown(args.speed)}` (`benchmarks/bench_mmse.py`).",
        "",
    ]
    atomic_write(folder / "tradeoff.md", "\n".join(text).encode())
    summary = f"From `{command}`:\n\n" + card(results, bits, CHOSEN)
    atomic_write(folder / "tradeoff-card.md", summary.encode())
    rows = [
        {"layer": k, "decode": d, **(r or {"measured": False})}
        for (k, d), r in results.items()
    ]
    data: dict[str, Any] = {"command": command, "rows": rows, "speed": speed}
    atomic_write(folder / "tradeoff.json", (json.dumps(data, indent=2) + "\n").encode())
    print(f"wrote {folder}/tradeoff.md", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    from compressai_hqa.zoo import hqa

    stack = hqa(pretrained=True)
    images = load_eval_images(f"mnist:{args.data_root}")
    if args.num_images is not None:
        images = images.subset(args.num_images)
    decodes = [d for d in args.decodes.split(",") if d]
    layers = args.layers or list(range(stack.num_layers, 0, -1))
    rows = [Row(k, d, args.seed) for k in layers for d in decodes]
    if not args.report_only:
        _measure(args, stack, images, rows)
    report(args, stack, images)


if __name__ == "__main__":
    main()
