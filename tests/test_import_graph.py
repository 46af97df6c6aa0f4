"""The model knows nothing of training: layers, models, entropy models, the codec
and the zoo import neither the recipes nor the trainer (read from the source with
``ast``, so lazy imports inside functions count too)."""

from __future__ import annotations

import ast

from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "compressai_hqa"
MODEL_SIDE = ("layers", "models", "entropy_models", "codec", "zoo")
FORBIDDEN = ("compressai_hqa.recipes", "compressai_hqa.training")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, absolute; ``from X import y`` counts as
    both ``X`` and ``X.y`` (``y`` may be a submodule)."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            found.add(source)
            found.update(f"{source}.{alias.name}" for alias in node.names)
    return found


def _forbidden(name: str) -> bool:
    return any(name == f or name.startswith(f + ".") for f in FORBIDDEN)


@pytest.mark.parametrize("subpackage", MODEL_SIDE)
def test_the_model_side_imports_no_training(subpackage: str) -> None:
    files = sorted((PACKAGE / subpackage).rglob("*.py"))
    assert files
    bad = {
        str(path.relative_to(PACKAGE.parent)): sorted(
            n for n in imported_modules(path) if _forbidden(n)
        )
        for path in files
    }
    assert not {k: v for k, v in bad.items() if v}


def test_the_reader_sees_every_spelling_of_a_forbidden_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "compressai_hqa"
    (root / "models").mkdir(parents=True)
    monkeypatch.setattr(f"{__name__}.PACKAGE", root)
    spellings = (
        "import compressai_hqa.recipes",
        "from compressai_hqa import recipes",
        "from compressai_hqa.training.trainer import train",
        "from .. import training",
        "from ..recipes import Recipe",
        "def f():\n    from compressai_hqa.recipes import Recipe",
    )
    for i, source in enumerate(spellings):
        path = root / "models" / f"m{i}.py"
        path.write_text(source + "\n")
        assert any(_forbidden(n) for n in imported_modules(path)), source
    clean = root / "models" / "clean.py"
    clean.write_text("from ..layers import Decoder\nimport compressai_hqa.configs\n")
    assert not any(_forbidden(n) for n in imported_modules(clean))


TRANSITIVE = """
import importlib, importlib.util, sys, types
from pathlib import Path

# the package's modules without its __init__ (which imports everything)
root = Path(importlib.util.find_spec("compressai_hqa").origin).parent
package = types.ModuleType("compressai_hqa")
package.__path__ = [str(root)]
sys.modules["compressai_hqa"] = package
for name in sys.argv[1:]:
    importlib.import_module(f"compressai_hqa.{name}")
print(sorted(m for m in sys.modules if m.startswith(FORBIDDEN)))
""".replace("FORBIDDEN", repr(FORBIDDEN))


def test_nor_does_anything_they_import() -> None:
    """Also through the modules they import (the registry of model families
    names recipes, it does not import them)."""
    import subprocess
    import sys

    modules = [*MODEL_SIDE, "codec.cli", "codec.api", "families"]
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", TRANSITIVE, *modules],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "[]"
