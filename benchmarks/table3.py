#!/usr/bin/env python3
"""Paper Table 3 and Figure 3, rerun: every system, every rate, one command.

Trains every system of :mod:`compressai_hqa.systems` (VQ-VAE, HAMs and its
ablations, HQA, and HQA with this project's recipe) with the same budget and
seeds on the real MNIST training split, fits the k-means floor at every rate,
and evaluates all of them on the MNIST test set at 8, 32, 128, 512 and 2,048
bits per image: MSE, rFID (the same n for every system) and the error of the
shipped MNIST classifier on the reconstructions, as mean and 95 % confidence
interval over the seeds. Writes ``table3.md`` (the paper's layout, the paper's
numbers beside ours), ``table3.json`` and Figure 3's three rate curves
(``table3-rfid.png``, ``table3-mse.png``, ``table3-class-error.png``).

Systems whose posterior is stochastic (the Gumbel ones) are decoded as the
paper's Algorithm 3 does, sampling every layer below the transmitted top code;
the others decode deterministically. Every system's argmin-decoding MSE is
reported too.

Everything is checkpointed under ``--output``: training runs resume where they
stopped, finished evaluations are kept (``eval/*.json``), so rerunning the same
command continues an interrupted run. Budgets (``--budget``):

* ``cpu`` (default): 500 steps of batch 128 per layer, seed 0, rFID on the
  first 500 test digits. On this project's two-core machine (2026-11-30), with
  one-thread processes sharing the two cores (``--train-only`` on disjoint
  ``--systems``, ``OMP_NUM_THREADS=1``), training every system took 56 min of
  one core and evaluating 150 min (the k-means floor 88 of them, 64 at 2,048 bits;
  each system and rate 1-2 min): about two hours of wall time. The committed
  table states the compute of its own run.
* ``paper``: each recipe's own steps and batch (18,000 steps per layer), seeds
  0-9, rFID on all 10,000 test digits: for a GPU.
* ``--smoke``: 2 steps of batch 16 per layer, 100 test digits, rFID on 10, the
  k-means floor fitted on 1,000 digits: checks the whole pipeline in a few
  minutes (its numbers mean nothing).

    python benchmarks/table3.py --data-root ../shared/data --output ~/runs/table3
    python benchmarks/table3.py --data-root ../shared/data --output /tmp/t3 --smoke
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time

from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from table3_report import markdown, plot, rows_of
from table3_runs import BUDGETS, Budget, train_system, training_seconds
from table3_scores import (
    Evaluator,
    decode_mode,
    evaluate_kmeans,
    evaluate_system,
    summary_of_originals,
)

from compressai_hqa.datasets import load_mnist
from compressai_hqa.eval_model.data import EvalImages
from compressai_hqa.systems import SYSTEMS

RESULTS = Path(__file__).resolve().parent / "results"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Paper Table 3 and Figure 3: every system at every rate.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    p.add_argument(
        "--data-root",
        type=Path,
        required=True,
        help="MNIST root holding MNIST/raw/*.gz",
    )
    p.add_argument(
        "--output",
        type=Path,
        required=True,
        help="work folder: training runs and evaluations (resumable)",
    )
    p.add_argument(
        "--results",
        type=Path,
        default=None,
        help=f"where the table and plots go (default: {RESULTS}, or "
        "OUTPUT/results with --smoke)",
    )
    p.add_argument(
        "--budget",
        choices=[b for b in BUDGETS if b != "smoke"],
        default="cpu",
        help="see above (default: %(default)s)",
    )
    p.add_argument("--smoke", action="store_true", help="the smoke budget")
    p.add_argument(
        "--systems",
        nargs="+",
        choices=list(SYSTEMS),
        default=list(SYSTEMS),
        help="systems to run (default: all)",
    )
    p.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=None,
        help="training seeds (default: the budget's)",
    )
    p.add_argument(
        "--rfid-n",
        type=int,
        default=None,
        help="test digits in rFID, the same for all (default: the budget's)",
    )
    p.add_argument("--device", default="auto", help="training and evaluation device")
    p.add_argument("--compile", action="store_true", help="torch.compile training")
    p.add_argument(
        "--train-only",
        action="store_true",
        help="train the --systems and stop (processes training disjoint systems "
        "into one --output can run side by side; a last run without this flag "
        "evaluates and writes the table)",
    )
    p.add_argument(
        "--no-progress", dest="progress", action="store_false", help="no progress bars"
    )
    args = p.parse_args(argv)
    budget = BUDGETS["smoke" if args.smoke else args.budget]
    if args.seeds is not None:
        budget = replace(budget, seeds=tuple(args.seeds))
    if args.rfid_n is not None:
        if args.rfid_n < 0:
            p.error("--rfid-n must be >= 0")
        budget = replace(budget, rfid_n=args.rfid_n)
    args.budget = budget
    if args.results is None:
        args.results = args.output / "results" if args.smoke else RESULTS
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    budget: Budget = args.budget
    start = time.perf_counter()
    device = torch.device(
        ("cuda" if torch.cuda.is_available() else "cpu")
        if args.device == "auto"
        else args.device
    )
    test = load_mnist(args.data_root, train=False)
    n = budget.test_n or len(test.images)
    images = EvalImages(
        "mnist-test",
        test.images[:n],
        tuple(f"mnist-test/{i:05d}" for i in range(n)),
        test.labels[:n],
    )
    rfid_n = min(budget.rfid_n, n)
    systems = [SYSTEMS[s] for s in args.systems]
    for seed in budget.seeds:
        for system in systems:
            train_system(args, system, seed)
    if args.train_only:
        return {}
    evaluator = Evaluator(images, rfid_n, args.progress, device)
    train_images = load_mnist(args.data_root, train=True).images
    if budget.kmeans_train is not None:
        train_images = train_images[: budget.kmeans_train]
    per_seed: dict[str, list[dict[int, dict[str, Any]]]] = {}
    labels = {"none": "No compression", "kmeans": "k-means on pixels (floor)"}
    decodes = {"none": "-", "kmeans": "argmin"}
    originals = summary_of_originals(evaluator)
    per_seed["none"] = [{bits: originals for bits in (8,)}]
    per_seed["kmeans"] = [evaluate_kmeans(args, train_images, evaluator)]
    for system in systems:
        labels[system.name] = system.label
        decodes[system.name] = decode_mode(system)
        per_seed[system.name] = [
            evaluate_system(args, system, seed, evaluator) for seed in budget.seeds
        ]
    report = {
        "command": shlex.join(
            [
                "python",
                "benchmarks/table3.py",
                *(sys.argv[1:] if argv is None else argv),
            ]
        ),
        "budget": asdict(budget),
        "test_n": n,
        "rfid_n": rfid_n,
        "hardware": f"{platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads, device {device}, "
        f"torch {torch.__version__}",
        "rows": rows_of(per_seed, labels, decodes),
        "train_s": training_seconds(args, systems),
        "eval_s": sum(
            r.get("wall_s", 0.0)
            for seeds in per_seed.values()
            for by_bits in seeds
            for r in by_bits.values()
        ),
        "wall_s": time.perf_counter() - start,
    }
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "table3.json").write_text(json.dumps(report, indent=2) + "\n")
    table = markdown(report)
    (args.results / "table3.md").write_text(table)
    plot(report, args.results)
    print(table)
    return report


if __name__ == "__main__":
    main()
