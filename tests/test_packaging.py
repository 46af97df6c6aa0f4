"""The sdist and the wheel built from it, installed as a user installs them.

One fresh virtualenv takes, in turn, the wheel, the sdist and an editable
install, each with its dependencies resolved by pip (no ``--no-deps``), offline:
the environment sees exactly the distributions that the wheel's
``install_requires`` needs, transitively (this environment's copies, linked into
one folder), and nothing else, so a module that imports an undeclared package
fails here. After each ``pip uninstall`` the virtualenv's site-packages must be
as before the install (the start-up hook's ``.pth`` file is one of the wheel's
files).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile

from importlib import metadata
from pathlib import Path

import pytest

from conftest import ROOT
from PIL import Image
from test_compressai_tools import assert_same_numbers, write_digits

BUILD = """
import sys
import setuptools.build_meta as backend
print(getattr(backend, sys.argv[1])(sys.argv[2]))
"""

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

REGISTERED = """
import sys
start = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "compressai"))
import compressai.zoo
print(start, "_compressai_hqa_hook" in sys.modules, "hqa-mnist" in compressai.zoo.image_models)
"""


def _run(*args: str | Path, cwd: Path, env: dict[str, str]) -> str:
    out = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, cwd=cwd, env=env,
        timeout=900,
    )  # fmt: skip
    assert out.returncode == 0, (out.stdout[-2000:], out.stderr[-3000:])
    return out.stdout


def _requirement_closure(requirements: list[str]) -> dict[str, metadata.Distribution]:
    """The installed distributions that satisfy ``requirements`` and theirs, by
    canonical name (each the first on ``sys.path`` that satisfies the specifier)."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    installed: dict[str, list[metadata.Distribution]] = {}
    for dist in metadata.distributions():
        installed.setdefault(canonicalize_name(dist.metadata["Name"]), []).append(dist)
    found: dict[str, metadata.Distribution] = {}
    todo = [(r, "") for r in requirements]
    while todo:
        text, extra = todo.pop()
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate({"extra": extra}):
            continue
        name = canonicalize_name(req.name)
        candidates = [d for d in installed.get(name, []) if d.version in req.specifier]
        assert candidates, f"no installed distribution satisfies {text}"
        new = name not in found
        dist = found.setdefault(name, candidates[0])
        for sub in dist.requires or []:
            for sub_extra in ("", *req.extras) if new else req.extras:
                todo.append((sub, sub_extra))
    return found


def _dependency_view(wheel: Path, view: Path) -> Path:
    """A folder of links to the files of the wheel's dependencies, transitively."""
    from zipfile import ZipFile

    with ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        lines = archive.read(name).decode().splitlines()
    requirements = [
        line.split(":", 1)[1].strip()
        for line in lines
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    ]
    view.mkdir()
    for dist in _requirement_closure(requirements).values():
        for file in dist.files or []:
            top = file.parts[0]
            if top in ("..", "__pycache__") or top.endswith(".pth"):
                continue
            link = view / top
            if not link.exists():
                link.symlink_to(Path(dist.locate_file(top)).resolve())
    return view


def _listing(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The sdist of a copy of the tree, and the wheel built from that sdist."""
    tmp = tmp_path_factory.mktemp("dists")
    source = tmp / "source"
    ignore = shutil.ignore_patterns(
        ".git", ".venv*", "runs", "build", "dist", "*.egg-info", "__pycache__",
        ".*cache",
    )  # fmt: skip
    shutil.copytree(ROOT, source, ignore=ignore)
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    out = tmp / "out"
    sdist = out / _run(sys.executable, "-c", BUILD, "build_sdist", out,
                       cwd=source, env=env).split()[-1]  # fmt: skip
    with tarfile.open(sdist) as archive:
        archive.extractall(tmp / "unpacked", filter="data")
    (unpacked,) = (tmp / "unpacked").iterdir()
    wheel = out / _run(sys.executable, "-c", BUILD, "build_wheel", out,
                       cwd=unpacked, env=env).split()[-1]  # fmt: skip
    return {"source": source, "sdist": sdist, "wheel": wheel, "tmp": tmp}


@pytest.fixture(scope="module")
def venv(built: dict[str, Path]) -> dict:
    """A new virtualenv (without setuptools) that sees only the dependencies."""
    env_dir = built["tmp"] / "env"
    subprocess.run([sys.executable, "-m", "venv", str(env_dir)], check=True)
    python = env_dir / "bin" / "python"
    purelib = Path(
        _run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
             cwd=built["tmp"], env=dict(os.environ)).strip()
    )  # fmt: skip
    # the view provides setuptools and wheel (compressai requires them)
    _run(python, "-m", "pip", "uninstall", "-q", "-y", "setuptools", cwd=built["tmp"],
         env=dict(os.environ))  # fmt: skip
    view = _dependency_view(built["wheel"], built["tmp"] / "view")
    (purelib / "_dependencies.pth").write_text(f"{view}\n")
    # no PYTHONPATH: the checks must import the installed copy, not a source
    inherited = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env = {**inherited, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1",
           "PYTHONWARNINGS": "ignore", "PIP_FIND_LINKS": "", "PIP_CONSTRAINT": ""}  # fmt: skip
    return {"python": python, "purelib": purelib, "env": env,
            "before": _listing(purelib), "bin": env_dir / "bin"}  # fmt: skip


def _install_and_check_registered(venv: dict, cwd: Path, *target: str | Path) -> str:
    python, env = venv["python"], venv["env"]
    log = _run(python, "-m", "pip", "install", "--no-build-isolation", *target,
               cwd=cwd, env=env)  # fmt: skip
    assert "Requirement already satisfied: compressai" in log  # resolved, not skipped
    record = next(venv["purelib"].glob("compressai_hqa-*.dist-info")) / "RECORD"
    assert "compressai_hqa_hook.pth," in record.read_text()
    # nothing heavy at start-up, the hook in place, HQA in CompressAI's zoo
    start, hook, zoo = _run(python, "-c", REGISTERED, cwd=cwd, env=env).rsplit(
        maxsplit=2
    )
    assert (start, hook, zoo) == ("[]", "True", "True")
    return log


def _uninstall_leaves_nothing(venv: dict, cwd: Path) -> None:
    _run(venv["python"], "-m", "pip", "uninstall", "-y", "compressai-hqa", cwd=cwd,
         env=venv["env"])  # fmt: skip
    left = _listing(venv["purelib"]) ^ venv["before"]
    assert not left, sorted(left)
    code = "import sys; print('_compressai_hqa_hook' in sys.modules)"
    assert _run(venv["python"], "-c", code, cwd=cwd, env=venv["env"]).strip() == "False"


@pytest.mark.slow
def test_the_wheel_with_its_dependencies_and_compressais_own_eval_model(
    built: dict[str, Path], venv: dict, tmp_path: Path
) -> None:
    python, env = venv["python"], venv["env"]
    _install_and_check_registered(venv, tmp_path, built["wheel"])
    run = _run(python, "-c", CHECK, cwd=tmp_path, env=env)
    location, stream_bits, ideal_bits, shape = run.split(maxsplit=3)
    assert Path(location).is_relative_to(venv["purelib"])  # the installed copy
    card = json.loads((ROOT / "zoo" / "results" / "mnist-test.json").read_text())
    assert int(stream_bits) == card["layers"]["5"]["argmin"]["stream_bits"] == 64
    assert int(ideal_bits) == card["layers"]["5"]["bits"] == 8
    assert shape.strip() == "(1, 1, 32, 32)"

    # CompressAI's own eval_model on the 100 digits the package ships, every
    # quality: the wrapper's numbers
    digits = write_digits(tmp_path / "digits", 100)
    args = ("pretrained", digits, "-a", "hqa-mnist", "-q", "1,2,3,4,5")
    theirs, ours = (
        json.loads(_run(python, "-m", module, *args, cwd=tmp_path, env=env))
        for module in ("compressai.utils.eval_model", "compressai_hqa.eval_model")
    )
    assert_same_numbers(theirs, ours)
    assert theirs["results"]["bits"] == [64.0, 96.0, 192.0, 576.0, 2112.0]

    # the console script (setup.py's entry point): one digit in one byte
    Image.open(digits / "000.png").save(tmp_path / "digit.png")
    script = venv["bin"] / "compressai-hqa"
    _run(script, "compress", "digit.png", "-o", "d.hqa", cwd=tmp_path, env=env)
    info = json.loads(_run(script, "info", "d.hqa", "--json", cwd=tmp_path, env=env))
    assert info["payload_bytes"] == 1 and info["model"] == "hqa-mnist"
    _run(script, "decompress", "d.hqa", "-o", "out", cwd=tmp_path, env=env)
    assert (tmp_path / "out" / "00000.png").is_file()

    _uninstall_leaves_nothing(venv, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sdist", "editable"])
def test_sdist_and_editable_installs_have_the_hook_too(
    built: dict[str, Path], venv: dict, tmp_path: Path, kind: str
) -> None:
    target = [built["sdist"]] if kind == "sdist" else ["-e", built["source"]]
    _install_and_check_registered(venv, tmp_path, *target)
    _uninstall_leaves_nothing(venv, tmp_path)
