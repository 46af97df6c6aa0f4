"""A plain (non-editable) ``pip install .`` in a fresh virtualenv, offline."""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys

from pathlib import Path

import pytest

from conftest import ROOT
from PIL import Image

CHECK = """
import socket

def _refuse(*args, **kwargs):
    raise OSError("network access in an offline check")

socket.socket.connect = _refuse
socket.create_connection = _refuse

import compressai_hqa, torch
from compressai_hqa.datasets import sample_digits

print(compressai_hqa.__file__)
model = compressai_hqa.zoo.hqa(layer=5, pretrained=True)
x = sample_digits().images[:1]
with torch.no_grad():
    out = model.compress(x)
    x_hat = model.decompress(out["strings"], out["shape"])["x_hat"]
from compressai_hqa.codec import compress_images, read_codes
data = compress_images(model, list(x), "context")  # the shipped context prior
assert torch.equal(torch.stack(read_codes(data, model)[1]), model.quantize(x))
print(len(out["strings"][0][0]) * 8, model.bits(32, 32), tuple(x_hat.shape))
"""


@pytest.mark.slow
def test_offline_install_in_a_fresh_virtualenv(tmp_path: Path) -> None:
    source = tmp_path / "source"
    ignore = shutil.ignore_patterns(
        ".git", ".venv*", "runs", "build", "*.egg-info", "__pycache__", ".*cache"
    )
    shutil.copytree(ROOT, source, ignore=ignore)
    env_dir = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", str(env_dir)], check=True)
    python = env_dir / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    # The dependencies (torch, compressai, ...) come from this environment, after the
    # fresh one's own site-packages: nothing is downloaded.
    Path(purelib, "_dependencies.pth").write_text("\n".join(site.getsitepackages()))
    # no PYTHONPATH either: the check must import the installed copy, not a source
    inherited = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    offline = {**inherited, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--no-deps", "--no-build-isolation",
         str(source)],
        capture_output=True, text=True, env=offline, timeout=600,
    )  # fmt: skip
    assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-2000:]
    assert (Path(purelib) / "compressai_hqa" / "zoo_weights").is_dir()
    run = subprocess.run(
        [str(python), "-c", CHECK], capture_output=True, text=True, cwd=tmp_path,
        env={**offline, "PYTHONWARNINGS": "ignore"}, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    location, stream_bits, ideal_bits, shape = run.stdout.split(maxsplit=3)
    assert Path(location).is_relative_to(purelib)  # the installed copy, not the source
    card = json.loads((ROOT / "zoo" / "results" / "mnist-test.json").read_text())
    assert int(stream_bits) == card["layers"]["5"]["argmin"]["stream_bits"] == 64
    assert int(ideal_bits) == card["layers"]["5"]["bits"] == 8
    assert shape.strip() == "(1, 1, 32, 32)"

    # the console script (setup.py's entry point): one digit in one byte
    from compressai_hqa.datasets import sample_digits

    digit = (sample_digits().images[0, 0] * 255).round().byte().numpy()
    Image.fromarray(digit).save(tmp_path / "digit.png")
    script = env_dir / "bin" / "compressai-hqa"

    def codec(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(script), *args], capture_output=True, text=True, cwd=tmp_path,
            env={**offline, "PYTHONWARNINGS": "ignore"}, timeout=300,
        )  # fmt: skip

    assert codec("compress", "digit.png", "-o", "d.hqa").returncode == 0
    info = json.loads(codec("info", "d.hqa", "--json").stdout)
    assert info["payload_bytes"] == 1 and info["model"] == "hqa-mnist"
    assert codec("decompress", "d.hqa", "-o", "out").returncode == 0
    assert (tmp_path / "out" / "00000.png").is_file()
    assert codec("compress", "digit.png", "-o", "d.hqa").returncode == 1  # exists
