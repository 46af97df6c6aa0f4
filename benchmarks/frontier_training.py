"""The frontier's training-length section: is each CompressAI baseline converged?

Every lambda of every model is read at its best width after each number of steps
it was trained for (a folder of ``--runs`` per length). The issue's criterion is
a held-out loss flat over the run's last 20 % of steps; since the recipe drops the
learning rate at 70 % of the steps, which flattens every tail, a run counts as
converged here only if a longer run also barely improves on the shorter one.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "COLLAPSED_BITS",
    "FLAT_TAIL",
    "LONGER_GAIN",
    "convergence",
    "section",
    "verdict",
]

#: bits per digit under which a model codes nothing (one image for every digit).
COLLAPSED_BITS = 1.0
#: most the held-out loss may still fall over a run's last 20 % of steps.
FLAT_TAIL = 0.01
#: most the longest run may lower the held-out loss below the next-shorter one.
LONGER_GAIN = 0.05


def _by_length(runs: Sequence[Path], models: tuple[str, ...]) -> dict:
    """(model, lambda) -> {steps: the run of lowest held-out loss at that length}."""
    from frontier_systems import finished_runs

    best: dict[tuple[str, float], dict[int, dict]] = {}
    for name in models:
        for c in finished_runs(runs, name):
            runs_at = best.setdefault((name, c["lmbda"]), {})
            if c["steps"] not in runs_at or (
                c["heldout_loss"] < runs_at[c["steps"]]["heldout_loss"]
            ):
                runs_at[c["steps"]] = c
    return best


def verdict(runs_at: dict[int, dict]) -> str:
    """Whether the longest run of one lambda is converged, and if not, why."""
    longest = runs_at[max(runs_at)]
    if longest.get("heldout_bits", COLLAPSED_BITS) < COLLAPSED_BITS:
        return "collapsed (codes nothing)"
    if longest["flat"] >= FLAT_TAIL:
        return "no: tail still falling"
    if len(runs_at) < 2:
        return "tail flat; no longer run"
    shorter = runs_at[sorted(runs_at)[-2]]
    if 1 - longest["heldout_loss"] / shorter["heldout_loss"] >= LONGER_GAIN:
        return "no: longer run still better"
    return "yes"


def convergence(runs: Sequence[Path], models: tuple[str, ...]) -> list[str]:
    """The training-length table: per model and lambda, the held-out loss
    (lambda x 255^2 x MSE + bits per pixel, best width) at each step count, the
    change made by the last lengthening, the longest run's fall over its last 20 %
    of steps and the :func:`verdict`."""
    best = _by_length(runs, models)
    lengths = sorted({s for runs_at in best.values() for s in runs_at})
    if not lengths:
        return []
    lines = [
        "| model | lambda | "
        + " | ".join(f"held-out loss, {s:,} steps" for s in lengths)
        + " | last lengthening | longest run: fall over its last 20 % | converged |",
        "|---|---|" + "---|" * len(lengths) + "---|---|---|",
    ]
    for (name, lmbda), runs_at in sorted(best.items()):
        losses = [runs_at[s]["heldout_loss"] if s in runs_at else None for s in lengths]
        steps = sorted(runs_at)
        change = "-"
        if len(steps) > 1:
            shorter, longest = runs_at[steps[-2]], runs_at[steps[-1]]
            change = (
                f"{100 * (longest['heldout_loss'] / shorter['heldout_loss'] - 1):+.2f}"
                f" % (x{steps[-1] // steps[-2]})"
            )
        lines.append(
            f"| {name} | {lmbda:g} | "
            + " | ".join("-" if v is None else f"{v:.4f}" for v in losses)
            + f" | {change} | {100 * runs_at[steps[-1]]['flat']:.2f} %"
            + f" | {verdict(runs_at)} |"
        )
    return lines


def section(runs: Sequence[Path], models: tuple[str, ...]) -> list[str]:
    """The ``frontier.md`` section (heading, rule, table, count); empty if no
    CompressAI run was found."""
    table = convergence(runs, models)
    if not table:
        return []
    rows = table[2:]
    converged = sum(row.endswith("| yes |") for row in rows)
    collapsed = sum("collapsed" in row for row in rows)
    return [
        "## Training length of the CompressAI baselines",
        "",
        "Each lambda at its best width's held-out loss (5,000 training digits never "
        "trained on) after each number of steps trained. Converged means: the "
        f"longest run's held-out loss fell by under {100 * FLAT_TAIL:g} % over its "
        "last 20 % of steps (the issue's criterion) *and* it is under "
        f"{100 * LONGER_GAIN:g} % below the next-shorter run's (the recipe drops the "
        "learning rate at 70 % of the steps, which flattens every tail, so a flat "
        "tail alone is no evidence). The frontier scores each lambda at its run of "
        "lowest held-out loss.",
        "",
        *table,
        "",
        f"Converged: {converged} of the {len(rows) - collapsed} (model, lambda) rows "
        f"that code anything; {collapsed} more collapsed to a model that codes "
        "nothing (its loss flat at any length).",
    ]
