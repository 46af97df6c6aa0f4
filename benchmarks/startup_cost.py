#!/usr/bin/env python3
"""Start-up cost of the compressai-hqa hook: ``python -X importtime -c pass``.

The wheel installs ``compressai_hqa_hook.pth``, which imports
``_compressai_hqa_hook`` at every Python start-up. This script builds the wheel
(or takes ``--wheel``), installs it without dependencies into a throwaway
virtualenv (the hook imports nothing, so none are needed), and runs ``python -X
importtime -c pass`` there ``--runs`` times with the ``.pth`` file in place and as
many times with it renamed (so ``site`` skips it), each pair back to back in
alternating order. It prints the medians of the summed import times (what ``-X
importtime`` reports), of the hook's own line and of the wall-clock time of the
whole interpreter, and the medians of the paired differences (robust to the slow
drift of a shared machine); exit status 1 when the import-time difference exceeds
``--limit-ms`` (5 ms by default) or torch, compressai or numpy is imported at
start-up.

    python benchmarks/startup_cost.py
    python benchmarks/startup_cost.py --json benchmarks/results/startup-cost.json
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PTH = "compressai_hqa_hook.pth"
LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def build_wheel(out: Path) -> Path:
    """The project's wheel, built offline with this interpreter's setuptools."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "-q", "-w", str(out), str(ROOT)],
        check=True,
    )  # fmt: skip
    return next(out.glob("compressai_hqa-*.whl"))


def install(wheel: Path, env_dir: Path) -> tuple[Path, Path]:
    """(python, site-packages) of a new virtualenv holding only ``wheel``."""
    subprocess.run([sys.executable, "-m", "venv", str(env_dir)], check=True)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index",
         str(wheel)],
        check=True,
    )  # fmt: skip
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    purelib = subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    return python, Path(purelib)


def measure(python: Path) -> dict[str, float]:
    """One ``python -X importtime -c pass``: summed import time, the hook's
    cumulative import time (0 when absent), wall time; milliseconds."""
    start = time.perf_counter()
    err = subprocess.run(
        [str(python), "-X", "importtime", "-c", "pass"],
        capture_output=True, text=True, check=True,
    ).stderr  # fmt: skip
    wall = time.perf_counter() - start
    total = hook = 0
    for match in LINE.finditer(err):
        total += int(match.group(1))
        if match.group(4) == "_compressai_hqa_hook":
            hook = int(match.group(2))
    return {"imports_ms": total / 1000, "hook_ms": hook / 1000, "wall_ms": wall * 1000}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, help="the wheel (default: build it)")
    parser.add_argument("--runs", type=int, default=100, help="runs of each kind")
    parser.add_argument("--limit-ms", type=float, default=5.0)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or build_wheel(Path(tmp, "dist"))
        python, purelib = install(wheel, Path(tmp, "env"))
        pth, off = purelib / PTH, purelib / (PTH + ".off")
        if not pth.is_file():
            raise SystemExit(f"{wheel.name} did not install {PTH}")
        modules = subprocess.run(
            [str(python), "-c", "import sys; print(' '.join(sorted(sys.modules)))"],
            capture_output=True, text=True, check=True,
        ).stdout.split()  # fmt: skip
        heavy = [m for m in ("torch", "compressai", "numpy") if m in modules]
        runs: dict[str, list[dict[str, float]]] = {"with": [], "without": []}
        measure(python)  # warm the file cache and write the byte code
        for i in range(args.runs):  # alternate the order too
            for kind in ("with", "without") if i % 2 else ("without", "with"):
                if kind == "without":
                    pth.rename(off)
                try:
                    runs[kind].append(measure(python))
                finally:
                    if off.exists():
                        off.rename(pth)

    def median(kind: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[kind])

    def paired(key: str) -> float:
        """Median over the runs of (with - without), each pair run back to back
        (robust to the slow drift of a shared machine)."""
        pairs = zip(runs["with"], runs["without"], strict=True)
        return statistics.median(a[key] - b[key] for a, b in pairs)

    result = {
        "command": "python -X importtime -c pass",
        "runs": args.runs,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "heavy_modules_at_start_up": heavy,
        "hook_import_ms": round(median("with", "hook_ms"), 3),
        "imports_ms": {k: round(median(k, "imports_ms"), 3) for k in runs},
        "imports_difference_ms": round(paired("imports_ms"), 3),
        "wall_ms": {k: round(median(k, "wall_ms"), 2) for k in runs},
        "wall_difference_ms": round(paired("wall_ms"), 2),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if heavy or result["imports_difference_ms"] > args.limit_ms:
        print(f"over the limit ({args.limit_ms} ms) or heavy imports at start-up",
              file=sys.stderr)  # fmt: skip
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
