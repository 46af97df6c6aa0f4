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
import csv
import json
import math
import platform
import shlex
import sys
import time

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from compressai_hqa import HQA, Decoding
from compressai_hqa.baselines.kmeans import fit_kmeans
from compressai_hqa.datasets import load_mnist
from compressai_hqa.eval_model.data import EvalImages
from compressai_hqa.eval_model.evaluate import EvalOptions, evaluate, summary
from compressai_hqa.files import atomic_write
from compressai_hqa.systems import SYSTEMS, System
from compressai_hqa.training import TrainSettings, train
from compressai_hqa.training.resume import CHECKPOINT, MODEL, load_training_checkpoint

RESULTS = Path(__file__).resolve().parent / "results"
RATES = (8, 32, 128, 512, 2048)
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


@dataclass(frozen=True)
class Budget:
    """How much every system gets.

    Args:
        name: ``cpu``, ``paper`` or ``smoke``.
        steps: steps per layer (None: each recipe's own).
        batch_size: batch size (None: each recipe's own).
        seeds: training seeds.
        rfid_n: test digits whose reconstructions enter rFID (0: no rFID).
        test_n: test digits evaluated (None: all 10,000).
        kmeans_train: training digits the k-means floor is fitted on (None: all).
        kmeans_iter: Lloyd iterations at most.
    """

    name: str
    steps: int | None
    batch_size: int | None
    seeds: tuple[int, ...]
    rfid_n: int
    test_n: int | None = None
    kmeans_train: int | None = None
    kmeans_iter: int = 100


BUDGETS = {
    "cpu": Budget("cpu", 500, 128, (0,), 500),
    "paper": Budget("paper", None, None, tuple(range(10)), 10_000),
    "smoke": Budget(
        "smoke", 2, 16, (0,), 10, test_n=100, kmeans_train=1000, kmeans_iter=3
    ),
}


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


# ----------------------------------------------------------------- training
def training_jobs(system: System, seed: int) -> dict[str, tuple[Any, int]]:
    """Run name -> (config, layers) of the models ``system`` trains for ``seed``."""
    if not system.flat:
        return {f"{system.name}-s{seed}": (system.config, system.config.num_layers)}
    return {
        f"{system.name}-{config.name.rsplit('-', 1)[1]}-s{seed}": (config, n)
        for config, n in system.rates().values()
    }


def _finished(run: Path, layers: int) -> bool:
    if not (run / CHECKPOINT).is_file() or not (run / MODEL).is_file():
        return False
    state = load_training_checkpoint(run / CHECKPOINT)
    return int(state["layer"]) == layers and bool(state["layer_done"])


def train_system(args: argparse.Namespace, system: System, seed: int) -> None:
    budget: Budget = args.budget
    for name, (config, layers) in training_jobs(system, seed).items():
        run = args.output / "runs" / name
        if _finished(run, layers):
            continue
        print(f"training {name} ({config.name})", file=sys.stderr, flush=True)
        settings = TrainSettings(
            config=config,
            recipe=system.recipe,
            system=system.name,
            data_root=args.data_root,
            output=run,
            layers=layers,
            steps=budget.steps,
            batch_size=budget.batch_size,
            resume=(run / CHECKPOINT).is_file(),
            seed=seed,
            device=args.device,
            compile=args.compile,
            checkpoint_every=250,
            log_every=50,
            eval_images=min(1000, budget.test_n or 1000),
            progress=args.progress,
            tensorboard=False,
        )
        train(settings)


# --------------------------------------------------------------- evaluation
def decode_mode(system: System) -> str:
    """``"sample"`` for stochastic posteriors (paper Algorithm 3), else argmin."""
    return (
        "sample" if system.config.layers[0].quantizer == "probabilistic" else "argmin"
    )


@dataclass
class Evaluator:
    """The test digits, the classifier and (lazily) the Inception network."""

    images: EvalImages
    rfid_n: int
    progress: bool
    device: torch.device
    classifier: Any = None
    inception: Any = None
    reference: Any = None

    def __post_init__(self) -> None:
        from compressai_hqa.metrics.classifier import load_classifier

        self.classifier = load_classifier(self.device)
        if self.rfid_n:
            from compressai_hqa.eval_model.rfid import reference_features
            from compressai_hqa.metrics.fid import load_inception

            self.inception = load_inception(self.device)
            self.reference = reference_features(
                self.images, self.rfid_n, self.inception, progress=self.progress
            )

    def __call__(self, codec: Any, decode: str) -> dict[str, float]:
        options = EvalOptions(
            entropy_estimation=True,
            decoding=Decoding(decode, seed=0),
            batch_size=500,
        )
        out = summary(
            codec,
            self.images,
            options,
            self.classifier,
            self.rfid_n,
            self.inception,
            self.reference,
        )
        out["mse_argmin"] = out["mse"]
        if decode != "argmin":  # the MSE of argmin decoding too (no classifier)
            argmin = replace(options, decoding=Decoding("argmin", seed=0))
            out["mse_argmin"] = evaluate(codec, self.images, argmin).metrics["mse"]
        return out


def _cached(path: Path, compute: Any, *args: Any) -> dict[str, Any]:
    """``compute(*args)``, kept in ``path`` (JSON): a rerun reads it back."""
    if path.is_file():
        return json.loads(path.read_text())
    tic = time.perf_counter()
    result = compute(*args)
    result["wall_s"] = time.perf_counter() - tic
    atomic_write(path, lambda f: f.write(json.dumps(result, indent=2).encode()))
    return result


def _score_model(
    weights: Path, layers: int, decode: str, evaluator: Evaluator
) -> dict[str, Any]:
    state = torch.load(weights, weights_only=True)
    model = HQA.from_state_dict(state, num_layers=layers).eval()
    result = evaluator(model.to(evaluator.device), decode)
    return {"bits": model.bits(32, 32), "decode": decode, **result}


def _score_kmeans(
    train_images: torch.Tensor, bits: int, budget: Budget, evaluator: Evaluator
) -> dict[str, Any]:
    codec, fit = fit_kmeans(train_images, bits, max_iter=budget.kmeans_iter, seed=0)
    result = evaluator(codec.to(evaluator.device), "argmin")
    return {"bits": bits, "decode": "argmin", "iterations": fit.iterations, **result}


def evaluate_system(
    args: argparse.Namespace, system: System, seed: int, evaluator: Evaluator
) -> dict[int, dict[str, Any]]:
    """Bits -> metrics of ``system`` trained with ``seed``."""
    jobs = training_jobs(system, seed)
    out = {}
    for bits, (config, layers) in sorted(system.rates().items()):
        name = next(n for n, (c, _) in jobs.items() if c == config)
        weights = args.output / "runs" / name / MODEL
        path = args.output / "eval" / f"{system.name}-s{seed}-b{bits}.json"
        out[bits] = _cached(
            path, _score_model, weights, layers, decode_mode(system), evaluator
        )
    return out


def evaluate_kmeans(
    args: argparse.Namespace, train_images: torch.Tensor, evaluator: Evaluator
) -> dict[int, dict[str, Any]]:
    """Bits -> metrics of the k-means floor (fitted once, seed 0)."""
    return {
        bits: _cached(
            args.output / "eval" / f"kmeans-b{bits}.json",
            _score_kmeans,
            train_images,
            bits,
            args.budget,
            evaluator,
        )
        for bits in RATES
    }


def training_seconds(args: argparse.Namespace, systems: Sequence[System]) -> float:
    """Wall seconds of every finished layer of ``systems``' runs (resumes included)."""
    total = 0.0
    for seed in args.budget.seeds:
        for system in systems:
            for name in training_jobs(system, seed):
                path = args.output / "runs" / name / "layer_metrics.csv"
                if path.is_file():
                    with path.open(newline="") as f:
                        total += sum(float(r["wall_s"]) for r in csv.DictReader(f))
    return total


# ------------------------------------------------------------------ report
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


def _rows(
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


def summary_of_originals(evaluator: Evaluator) -> dict[str, Any]:
    """The "No compression" row: the classifier's error on the originals."""
    from compressai_hqa.metrics.classifier import classification_error

    images = evaluator.images
    error = classification_error(evaluator.classifier, images.images, images.labels)
    return {"mse": 0.0, "mse_argmin": 0.0, "rfid": 0.0, "class_error": error}


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
        "rows": _rows(per_seed, labels, decodes),
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
