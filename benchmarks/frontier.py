#!/usr/bin/env python3
"""The rate-distortion-perception frontier on MNIST: HQA against what users have.

Scores every system on the 10,000 MNIST test digits (32x32) with this project's
evaluation: bits per digit (real file or stream bytes, and the ideal -log2 p where
the system has a probability model), MSE on [0, 1] floats, PSNR (8-bit, as
CompressAI's ``eval_model``), the shipped MNIST classifier's error on the
reconstructions, and rFID against the originals of the first ``--rfid-n`` digits
(equal n for every system). Systems (``frontier_systems.py``):

* HQA, the shipped MNIST stack at every layer: each prior of the ``.hqa`` format
  (one file of all 10,000 digits per layer and prior) and each decoding mode;
* CompressAI's ``bmshj2018-factorized``, ``bmshj2018-hyperprior`` and
  ``mbt2018-mean`` retrained on the same digits
  (``benchmarks/compressai_baselines.py``);
* 256-centroid k-means on pixels and its product codes (read from
  ``zoo/results/kmeans/mnist-test.json``, the same evaluation);
* JPEG, WebP, AVIF and JPEG XL at their lowest settings.

Every point is cached in ``--output`` (rerun the same command to continue after
an interruption; ``--report-only`` rewrites the table from the cache); the table
and plots are written to ``--results``. ``--runs`` takes several runs folders
(e.g. the sweep's and longer runs'): each lambda is scored at its run of lowest
held-out loss. ``--tradeoff`` shares HQA's rFIDs with ``benchmarks/tradeoff.py``'s
rows (the same seeded decodes). CompressAI is compared and plotted at its ideal
bits (its real bytes pay a flush per digit; see the table's notes).

    python benchmarks/frontier.py --data-root ../shared/data \\
        --runs ~/runs/compressai ~/runs/compressai-long ~/runs/compressai-32k \\
            ~/runs/compressai-64k \\
        --output ~/runs/frontier --tradeoff ~/runs/tradeoff
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from torch import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parent))

from compressai_baselines import MODELS
from frontier_hqa import hqa_points
from frontier_report import codes_nothing, rate
from frontier_systems import (
    CLASSICAL,
    Point,
    best_runs,
    classical_points,
    compressai_points,
    compressai_setting,
)

ROOT = Path(__file__).resolve().parent.parent
SYSTEMS = ("hqa", "compressai", "classical", "kmeans")


def slug(system: str, setting: str) -> str:
    return re.sub(r"[^A-Za-z0-9.=-]+", "_", f"{system}__{setting}")


@torch.no_grad()
def score(point: Point, images: Tensor, labels: Tensor, classifier, n: int) -> dict:
    """Every metric but rFID, plus the first ``n`` reconstructions for it."""
    x_hat = point.x_hat.float().clamp(0, 1)
    mse = (x_hat - images).pow(2).flatten(1).mean(1)
    org = (images * 255).round()
    rec = (x_hat * 255).round()
    mse8 = (org - rec).pow(2).flatten(1).mean(1).clamp_min(1e-10)
    psnr = 20 * math.log10(255) - 10 * torch.log10(mse8)
    predictions = torch.cat(
        [classifier(x_hat[i : i + 1000]).argmax(1) for i in range(0, len(x_hat), 1000)]
    )
    ideal = point.ideal_bits
    return {
        "system": point.system,
        "setting": point.setting,
        "bits": float(np.mean(point.bits)),
        "ideal_bits": None if ideal is None else float(np.mean(ideal)),
        "mse": float(mse.mean()),
        "psnr": float(psnr.mean()),
        "class_error": float((predictions != labels).float().mean()),
        "num_images": len(images),
        **point.notes,
    }


def points(args: argparse.Namespace, images: Tensor) -> Iterator[Point]:
    """Every system's points; those already cached in ``args.output`` come without
    reconstructions (nothing re-encoded)."""

    def known(system: str, setting: str) -> bool:
        return (args.output / f"{slug(system, setting)}.json").is_file()

    if "classical" in args.systems:
        yield from classical_points(images, tuple(CLASSICAL), known=known)
    if "compressai" in args.systems:
        yield from compressai_points(images, args.runs, tuple(MODELS), known=known)
    if "hqa" in args.systems:
        yield from hqa_points(images, args, known=known)


def kmeans_rows(path: Path) -> list[dict]:
    """The committed k-means floor (same digits, same evaluation code)."""
    data = json.loads(path.read_text())
    res = data["results"]
    return [
        {
            "system": "k-means",
            "setting": f"{b} bits",
            "bits": float(b),
            "ideal_bits": float(b),
            "mse": res["mse"][i],
            "psnr": None,
            "class_error": res["class-error"][i],
            "rfid": res["rfid"][i],
            "rfid_n": data["rfid_n"],
            "num_images": data["num_images"],
            "source": str(path.relative_to(ROOT)),
        }
        for i, b in enumerate(res["bits"])
    ]


def _tradeoff_row(row: dict, args: argparse.Namespace) -> Path | None:
    """The trade-off benchmark's row file of an HQA point (same pixels), if any."""
    name = row.get("tradeoff_row")
    if name is None or args.tradeoff is None:
        return None
    return args.tradeoff / "rows" / f"{name}.json"


def add_rfid(
    row: dict,
    recon_path: Path,
    images: Tensor,
    args: argparse.Namespace,
    cache: dict,
) -> None:
    """rFID of the point's first ``args.rfid_n`` reconstructions; for HQA points
    the trade-off benchmark's value of the same row when it has one (the same
    seeded pixels, :mod:`frontier_hqa`), and this one written back to it."""
    from compressai_hqa.eval_model.data import EvalImages
    from compressai_hqa.eval_model.rfid import reference_features, rfid
    from compressai_hqa.files import atomic_write

    n, shared = args.rfid_n, _tradeoff_row(row, args)
    if shared is not None and shared.is_file():
        stored = json.loads(shared.read_text())
        if str(n) in stored.get("rfid", {}):
            row["rfid"], row["rfid_n"] = stored["rfid"][str(n)], n
            row["rfid_source"] = f"tradeoff row {row['tradeoff_row']}"
            return
    if "inception" not in cache:
        from compressai_hqa.metrics.inception import load_inception

        cache["inception"] = load_inception()
        ids = tuple(f"mnist-test/{i:05d}" for i in range(len(images)))
        cache["reference"] = reference_features(
            EvalImages("mnist-test", images, ids), n, cache["inception"], progress=True
        )
    x_hat = torch.from_numpy(np.load(recon_path))
    row["rfid"] = rfid(
        list(x_hat[:n]), cache["reference"], cache["inception"], progress=True
    )
    row["rfid_n"] = n
    if shared is not None and shared.is_file():
        stored = json.loads(shared.read_text())
        stored.setdefault("rfid", {})[str(n)] = row["rfid"]
        atomic_write(shared, (json.dumps(stored, indent=2) + "\n").encode())


def cached_rows(args: argparse.Namespace) -> list[dict]:
    """The points of ``args.systems`` cached in ``args.output``; CompressAI's at
    each lambda's best width only (as a measuring run would score them now)."""
    kinds = {"hqa": {"hqa"}, "compressai": set(MODELS), "classical": set(CLASSICAL)}
    wanted = set().union(*(kinds.get(s, set()) for s in args.systems))
    current = {
        (name, compressai_setting(c))
        for name in MODELS
        for c in best_runs(args.runs, name)
    }
    rows = []
    for path in sorted(args.output.glob("*.json")):
        row = json.loads(path.read_text())
        if row["system"] not in wanted:
            continue
        if row["system"] in MODELS and (row["system"], row["setting"]) not in current:
            continue  # another width won at that lambda since
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-root", type=Path, required=True, help="MNIST root")
    p.add_argument(
        "--runs",
        type=Path,
        nargs="+",
        required=True,
        help="compressai_baselines.py runs folders (per lambda: lowest held-out loss)",
    )
    p.add_argument("--output", type=Path, required=True, help="cache of the points")
    p.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    p.add_argument("--systems", nargs="+", choices=SYSTEMS, default=SYSTEMS)
    p.add_argument("--rfid-n", type=int, default=1000)
    p.add_argument(
        "--tradeoff",
        type=Path,
        default=None,
        help="benchmarks/tradeoff.py's output folder: HQA rFIDs shared with its rows",
    )
    p.add_argument(
        "--temperature",
        type=float,
        default=3.0,
        help="HQA's sampled decoding (the model card's chosen T)",
    )
    p.add_argument("--num-images", type=int, default=10000)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument(
        "--report-only",
        action="store_true",
        help="measure nothing: the report of the points cached in --output",
    )
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    from compressai_hqa.datasets import load_mnist
    from compressai_hqa.metrics.classifier import load_classifier

    if args.report_only:
        from frontier_report import write_report

        rows = cached_rows(args)
        if "kmeans" in args.systems:
            rows += kmeans_rows(ROOT / "zoo" / "results" / "kmeans" / "mnist-test.json")
        write_report(rows, args, tuple(MODELS))
        return
    test = load_mnist(args.data_root, train=False)
    images, labels = test.images[: args.num_images], test.labels[: args.num_images]
    classifier = load_classifier().eval()
    args.output.mkdir(parents=True, exist_ok=True)
    rows = []
    for point in points(args, images):
        name = slug(point.system, point.setting)
        metrics, recon = args.output / f"{name}.json", args.output / f"{name}.npy"
        if not metrics.exists():
            row = score(point, images, labels, classifier, args.rfid_n)
            np.save(recon, point.x_hat[: args.rfid_n].float().clamp(0, 1).numpy())
            metrics.write_text(json.dumps(row, indent=1) + "\n")
        rows.append(json.loads(metrics.read_text()))
        print(
            f"{rows[-1]['system']:>22} {rows[-1]['setting']:<28} "
            f"{rows[-1]['bits']:8.1f} bits  MSE {rows[-1]['mse']:.4f}"
        )
    cache: dict = {}
    for row in sorted(rows, key=rate):  # the lowest rates first
        path = args.output / f"{slug(row['system'], row['setting'])}.json"
        if "rfid" not in row and args.rfid_n and codes_nothing(row):
            row["rfid_note"] = "codes nothing (one image for every digit): not measured"
            path.write_text(json.dumps(row, indent=1) + "\n")
            continue
        if "rfid" not in row and args.rfid_n and "rfid_note" not in row:
            add_rfid(row, path.with_suffix(".npy"), images, args, cache)
            path.write_text(json.dumps(row, indent=1) + "\n")
            print(f"rFID {row['system']} {row['setting']}: {row['rfid']:.1f}")
    if "kmeans" in args.systems:
        rows += kmeans_rows(ROOT / "zoo" / "results" / "kmeans" / "mnist-test.json")
    from frontier_report import write_report

    write_report(rows, args, tuple(MODELS))


if __name__ == "__main__":
    main()
