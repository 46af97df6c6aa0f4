"""Paper Table 3, rerun: scoring every trained system and the k-means floor.

Part of ``benchmarks/table3.py`` (see its docstring): every evaluation is kept as
``OUTPUT/eval/*.json``, so a rerun reads it back.
"""

from __future__ import annotations

import argparse
import json
import time

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from table3_runs import MODEL, RATES, Budget, training_jobs

from compressai_hqa import HQA, Decoding
from compressai_hqa.baselines.kmeans import fit_kmeans
from compressai_hqa.eval_model.data import EvalImages
from compressai_hqa.eval_model.evaluate import EvalOptions, evaluate, summary
from compressai_hqa.files import atomic_write
from compressai_hqa.systems import System


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


def summary_of_originals(evaluator: Evaluator) -> dict[str, Any]:
    """The "No compression" row: the classifier's error on the originals."""
    from compressai_hqa.metrics.classifier import classification_error

    images = evaluator.images
    error = classification_error(evaluator.classifier, images.images, images.labels)
    return {"mse": 0.0, "mse_argmin": 0.0, "rfid": 0.0, "class_error": error}
