"""Start-up of the ``compressai-hqa`` console script: time, memory, warnings.

Runs, each ``--repeats`` times in a fresh interpreter, and reports the best wall
time and the peak RSS (``ru_maxrss`` of the child, from ``wait4``):

* ``--help`` and ``--version`` through the console script's launcher
  (``_compressai_hqa_cli.py``, what ``pip install`` puts behind
  ``compressai-hqa``): they must take under a second and import no torch;
* ``python -m compressai_hqa.codec --help``: the package imported first, as every
  ``--help`` did before the launcher;
* ``import compressai_hqa``: the start-up every real command pays;
* ``decompress`` of a valid 16 KB file claiming one 4096x4096 image at layer 5:
  refused from its header, peak RSS against the 1 GB target.

Also counts the lines of stderr that mention a warning.

    python benchmarks/cli_startup.py [--repeats 5] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAUNCHER = ROOT / "_compressai_hqa_cli.py"
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
ENV["PYTHONPATH"] = str(ROOT)

MAKE_FILE = """
import sys
import numpy as np
from compressai_hqa import zoo
from compressai_hqa.codec import weights_fingerprint
from compressai_hqa.codec.format import Header, ImageSize, encode_payload, pack
model = zoo.hqa(layer=5, pretrained=True)
header = Header(model="hqa-mnist", fingerprint=weights_fingerprint(model), layer=5,
                prior="uniform", codebook_size=256, factor=32,
                sizes=(ImageSize(4096, 4096, 1),))
codes = np.random.default_rng(0).integers(0, 256, header.total_codes)
open(sys.argv[1], "wb").write(pack(header, encode_payload(codes, "uniform", 256, None)))
"""


def measure(command: list[str]) -> tuple[float, int, int, str]:
    """(seconds, peak RSS in bytes, exit status, stderr) of one run."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV
    )
    err = proc.stderr.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.stderr.close()
    seconds = time.perf_counter() - start
    return seconds, usage.ru_maxrss * 1024, os.waitstatus_to_exitcode(status), err


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--json", default=str(ROOT / "benchmarks/results/cli_startup.json")
    )
    args = parser.parse_args()
    python = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "4096x4096.hqa"
        subprocess.run([python, "-c", MAKE_FILE, str(big)], check=True, env=ENV)
        cases = {
            "compressai-hqa --help": [python, str(LAUNCHER), "--help"],
            "compressai-hqa --version": [python, str(LAUNCHER), "--version"],
            "python -m compressai_hqa.codec --help": [
                python, "-m", "compressai_hqa.codec", "--help"],
            "import compressai_hqa": [python, "-c", "import compressai_hqa"],
            "compressai-hqa decompress 4096x4096.hqa (refused)": [
                python, str(LAUNCHER), "decompress", str(big), "-o",
                str(Path(tmp) / "out")],
        }  # fmt: skip
        rows = {}
        for name, command in cases.items():
            runs = [measure(command) for _ in range(args.repeats)]
            seconds = min(r[0] for r in runs)
            peak = max(r[1] for r in runs)
            status = runs[0][2]
            warnings = sum(
                "Warning" in line for r in runs for line in r[3].splitlines()
            )
            rows[name] = dict(
                seconds=seconds,
                peak_rss_bytes=peak,
                status=status,
                warning_lines=warnings,
                stderr=runs[0][3].strip(),
            )
            print(f"{name}: {seconds:.2f} s (best of {args.repeats}), peak RSS "
                  f"{peak / 1e9:.3f} GB, exit {status}, {warnings} warning lines",
                  flush=True)  # fmt: skip
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
