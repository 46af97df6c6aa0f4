"""Rate-perception plot from ``python -m compressai_hqa.eval_model`` JSON files.

Three panels against bits per image (log scale): rFID, the MNIST classifier's
error and the MSE, as in the HQA paper's rate-perception comparison. A panel whose
metric is in none of the files says so instead of plotting.
"""

from __future__ import annotations

import json

from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["PANELS", "load_results", "rate_perception_plot"]

#: (results key, axis label) of each panel.
PANELS = (
    ("rfid", "rFID"),
    ("class-error", "classification error"),
    ("mse", "MSE"),
)


def load_results(paths: Sequence[str | Path]) -> list[dict[str, Any]]:
    """``{"label", "results"}`` per file; the label is the JSON's ``name``, or the
    file name when several files share a name."""
    loaded = []
    for path in paths:
        path = Path(path)
        data = json.loads(path.read_text())
        results = data.get("results", data)
        if "bits" not in results:
            raise ValueError(
                f"{path} has no 'bits' per image: not written by "
                "python -m compressai_hqa.eval_model"
            )
        loaded.append({"name": data.get("name", path.stem), "path": path, **results})
    names = [d["name"] for d in loaded]
    for d in loaded:
        d["label"] = d["name"] if names.count(d["name"]) == 1 else d["path"].stem
    return loaded


def rate_perception_plot(
    paths: Sequence[str | Path],
    output: str | Path,
    figsize: tuple[float, float] = (12.0, 4.0),
    dpi: int = 100,
    title: str | None = None,
) -> None:
    """Writes the plot to ``output`` (``figsize * dpi`` pixels).

    Args:
        paths: eval_model JSON files (one curve each).
        output: image file (PNG).
        figsize: width and height in inches.
        dpi: pixels per inch.
        title: optional figure title.
    """
    from matplotlib.figure import Figure  # no pyplot: no global backend state

    runs = load_results(paths)
    fig = Figure(figsize=figsize, dpi=dpi)
    axes = fig.subplots(1, len(PANELS))
    for ax, (key, label) in zip(axes, PANELS, strict=True):
        plotted = False
        for run in runs:
            values = run.get(key)
            if values is None or all(v is None for v in values):
                continue
            points = sorted(
                (b, v)
                for b, v in zip(run["bits"], values, strict=True)
                if v is not None
            )
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, marker="o", linewidth=1, label=run["label"])
            plotted = True
        ax.set_xlabel("bits per image")
        ax.set_ylabel(label)
        ax.set_xscale("log", base=2)
        ax.grid(True, which="both", alpha=0.3)
        if plotted:
            ax.legend(fontsize="small")
        else:
            ax.text(
                0.5,
                0.5,
                f"no '{key}' in the results",
                ha="center",
                va="center",
                transform=ax.transAxes,
            )
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(output, dpi=dpi)
