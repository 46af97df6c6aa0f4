"""The ``compressai-hqa`` console script as a user meets it: fast help, a version,
nothing but the payload on stdout, no dependency warnings, one-line errors for
odd arguments, devices, files and interruptions."""

from __future__ import annotations

import http.server
import io
import os
import signal
import subprocess
import sys
import threading
import time

from pathlib import Path

import pytest
import torch

from conftest import ROOT, tiny_config
from PIL import Image

import compressai_hqa

from compressai_hqa import HQA, zoo
from compressai_hqa.codec import cli, unpack
from compressai_hqa.codec.batching import DEFAULT_MAX_MEMORY
from compressai_hqa.codec.format import PRIOR_IDS
from compressai_hqa.datasets import COLOR_MODES
from compressai_hqa.decoding import DECODE_MODES

LAUNCHER = ROOT / "_compressai_hqa_cli.py"
# No PYTHONWARNINGS: warnings must not appear by themselves.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
ENV["PYTHONPATH"] = str(ROOT)


def console(*args: object, stdin=None, stdout=subprocess.PIPE, env=None, cwd=None):
    """The console script (its launcher) in a subprocess."""
    return subprocess.run(
        [sys.executable, str(LAUNCHER), *map(str, args)], stdin=stdin,
        stdout=stdout, stderr=subprocess.PIPE, env=env or ENV, cwd=cwd, timeout=300,
    )  # fmt: skip


def one_line(stderr: bytes, *words: str) -> str:
    lines = stderr.decode().strip().splitlines()
    assert len(lines) == 1, lines
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("weights") / "tiny.pth"
    torch.save(HQA(tiny_config(num_layers=2)).state_dict(), path)
    return path


@pytest.fixture(scope="module")
def digit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("digit") / "digit.png"
    Image.fromarray((torch.rand(32, 32) * 255).byte().numpy()).save(path)
    return path


def test_help_version_and_usage_errors_import_neither_torch_nor_compressai() -> None:
    for args, status in ((["--help"], 0), (["compress", "--help"], 0),
                         (["--version"], 0), (["decompress", "x.hqa"], 1),
                         (["decompress", "x", "-o", "d", "--seed", "-1"], 1)):  # fmt: skip
        run = subprocess.run(
            [sys.executable, "-X", "importtime", str(LAUNCHER), *args],
            capture_output=True, env=ENV, timeout=60,
        )  # fmt: skip
        assert run.returncode == status, run.stderr[-2000:]
        imported = [line.rsplit("|", 1)[-1].strip()
                    for line in run.stderr.decode().splitlines()
                    if line.startswith("import time:")]  # fmt: skip
        assert imported, "no -X importtime output"
        heavy = [m for m in imported if m.split(".")[0] in ("torch", "compressai",
                                                           "numpy", "PIL")]  # fmt: skip
        assert heavy == [], (args, heavy)
        other = [line for line in run.stderr.decode().splitlines()
                 if not line.startswith("import time:")]  # fmt: skip
        assert not any("Warning" in line for line in other), other
        if args == ["--version"]:
            assert (
                run.stdout.decode() == f"compressai-hqa {compressai_hqa.__version__}\n"
            )


def test_the_parser_lists_the_package_choices() -> None:
    assert cli.PRIOR_CHOICES == tuple(PRIOR_IDS)
    assert cli.DECODE_CHOICES == DECODE_MODES
    assert cli.COLOR_MODES == COLOR_MODES
    args = cli.build_parser().parse_args(["decompress", "x", "-o", "d"])
    assert args.max_memory == DEFAULT_MAX_MEMORY and args.seed == 0
    assert cli.parse_bytes("512M") == 512 << 20 and cli.parse_bytes("1.5GiB") == 3 << 29
    assert cli.parse_bytes("4096") == 4096 and cli.parse_bytes("2g") == 2 << 30
    for bad in ("0", "-1G", "1X", "", "G"):
        with pytest.raises(Exception, match="size"):
            cli.parse_bytes(bad)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def test_stdout_holds_only_the_file_even_when_weights_are_downloaded(
    tmp_path: Path, weights: Path, digit: Path
) -> None:
    """``--weights URL -o -``: torch's download message goes to stderr; no
    FutureWarning from CompressAI's imports; the summary goes to stderr."""
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *a: _Quiet(*a, directory=str(weights.parent))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/{weights.name}"
        env = {**ENV, "TORCH_HOME": str(tmp_path / "torch")}
        run = console("compress", digit, "-o", "-", "--weights", url, env=env)
    finally:
        server.shutdown()
    assert run.returncode == 0, run.stderr
    header, _ = unpack(run.stdout)  # nothing but the file
    assert header.count == 1 and header.model == "hqa-tiny"
    err = run.stderr.decode()
    assert "Downloading" in err and "Warning" not in err, err
    assert err.strip().splitlines()[-1] == (
        f"compressai-hqa: 1 image -> stdout: {len(run.stdout)} bytes, "
        f"{8 * len(run.stdout):.1f} bits per image"
    )


class _Zeros(io.RawIOBase):
    """An endless stream of zero bytes (stdin from /dev/zero)."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        buffer[:] = bytes(len(buffer))
        return len(buffer)


def run(capsysbinary, *args: object, stdin=None, monkeypatch=None):
    """The command line in this process: (exit status, stdout, stderr)."""
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(stdin)))
    try:
        status = cli.main([str(a) for a in args])
    except SystemExit as exit_:
        status = exit_.code
    out, err = capsysbinary.readouterr()
    return status, out, err


def test_odd_seeds_devices_weights_and_files_are_one_line_errors(
    tmp_path: Path, weights: Path, digit: Path, capsysbinary, monkeypatch
) -> None:
    data = tmp_path / "x.hqa"
    assert (
        run(capsysbinary, "compress", digit, "-o", data, "--weights", weights)[0] == 0
    )
    out = tmp_path / "d"
    status, _, err = run(capsysbinary, "decompress", data, "-o", out, "--seed",
                         "18446744073709551616")  # fmt: skip
    assert status == 1
    one_line(err, "--seed", "[0, 2^64)")
    status, _, err = run(capsysbinary, "decompress", data, "-o", out, "-q", "--weights",
                         weights, "--decode", "sample", "--seed",
                         "18446744073709551615")  # fmt: skip
    assert status == 0 and err == b"", err
    for device, words in (("meta", "unsupported device 'meta'"), ("gpu", "'gpu'"),
                          ("cuda:7", "cuda")):  # fmt: skip
        if device == "cuda:7" and torch.cuda.device_count() > 7:
            continue
        status, _, err = run(capsysbinary, "compress", digit, "-o", tmp_path / "y.hqa",
                             "--weights", weights, "--device", device)  # fmt: skip
        assert status == 1, err
        one_line(err, words)
    text = tmp_path / "notes.txt"
    text.write_text("these are not weights\n")
    status, _, err = run(capsysbinary, "compress", digit, "-o", tmp_path / "y.hqa",
                         "--weights", text)  # fmt: skip
    assert status == 2
    one_line(err, "notes.txt", "not a PyTorch file")
    # devices and endless streams: refused after a few bytes
    status, _, err = run(capsysbinary, "compress", "/dev/zero", "-o", tmp_path / "y")
    assert status == 1
    one_line(err, "/dev/zero is not a regular file or folder")
    status, _, err = run(capsysbinary, "info", "/dev/zero")
    assert status == 2
    one_line(err, "not an .hqa file")
    status, _, err = run(capsysbinary, "decompress", "-", "-o", tmp_path / "e",
                         stdin=_Zeros(), monkeypatch=monkeypatch)  # fmt: skip
    assert status == 2
    one_line(err, "not an .hqa file")
    status, _, err = run(capsysbinary, "compress", "-", "-o", tmp_path / "y",
                         "--max-memory", "1M", stdin=_Zeros(),
                         monkeypatch=monkeypatch)  # fmt: skip
    assert status == 2
    one_line(err, "stdin holds more than 1048576 bytes")
    assert not (tmp_path / "y").exists() and not (tmp_path / "e").exists()


def test_a_full_disk_on_stdout_is_one_line(weights: Path, digit: Path) -> None:
    with open("/dev/full", "wb") as full:
        done = console("compress", digit, "-o", "-", "--weights", weights, stdout=full)
    assert done.returncode == 1
    one_line(done.stderr, "error: cannot write to stdout: No space left on device")


def test_ctrl_c_while_torch_loads_is_one_line(tmp_path: Path, digit: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, str(LAUNCHER), "compress", str(digit), "-o",
         str(tmp_path / "x.hqa")],
        stderr=subprocess.PIPE, env=ENV,
    )  # fmt: skip
    maps = Path(f"/proc/{proc.pid}/maps")
    deadline = time.monotonic() + 60
    while "libtorch" not in maps.read_text() and time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert err.decode() == "compressai-hqa: interrupted\n"
    assert not (tmp_path / "x.hqa").exists()


def test_non_integer_layers_are_refused() -> None:
    for bad in (2.5, "2", True):
        with pytest.raises(TypeError, match="layer must be an integer"):
            zoo.hqa(layer=bad)
    with pytest.raises(TypeError, match="quality must be an integer"):
        zoo.layer_for_quality("mnist", 2.0)
    assert zoo.hqa(layer=2).num_layers == 2
