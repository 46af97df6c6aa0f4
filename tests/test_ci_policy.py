"""CI's test policies (tests/conftest.py): a skip that ALLOWED_SKIPS does not list
fails, and so does a run that imports the package from the source tree when
CI asks for the installed copy."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from pathlib import Path

from conftest import ROOT, from_source_tree

TESTS = """
import pytest
pytest.importorskip("json")

def test_missing_extra():
    pytest.importorskip("not_an_installed_module")

def test_full_data():
    pytest.skip("full reference data not found: set COMPRESSAI_HQA_DATA")

def test_passes():
    pass
"""


def _pytest(folder: Path, **env: str) -> str:
    base = {k: v for k, v in os.environ.items() if not k.startswith("COMPRESSAI_HQA_")}
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(folder)],
        capture_output=True, text=True, cwd=folder, env={**base, **env}, timeout=300,
    )  # fmt: skip
    return (out.stdout + out.stderr).strip().splitlines()[-1]


def test_skips_outside_the_allowed_list_fail(tmp_path: Path) -> None:
    for name in ("conftest.py", "mnist_subset.py"):
        shutil.copy(ROOT / "tests" / name, tmp_path / name)
    (tmp_path / "test_policy.py").write_text(TESTS)
    strict = _pytest(tmp_path, COMPRESSAI_HQA_ALLOWED_SKIPS="full_data,git_history")
    assert strict.startswith("1 failed, 1 passed, 1 skipped"), strict
    assert _pytest(tmp_path, COMPRESSAI_HQA_ALLOWED_SKIPS="").startswith(
        "2 failed, 1 passed"
    )
    # a module-level importorskip of a missing module fails collection
    (tmp_path / "test_policy.py").write_text(TESTS.replace('"json"', '"no_such"'))
    assert "1 error" in _pytest(tmp_path, COMPRESSAI_HQA_ALLOWED_SKIPS="full_data")


def test_the_installed_copy_can_be_required() -> None:
    """The guard agrees with where ``compressai_hqa`` comes from: an installed
    wheel passes (CI), the source tree (an editable install) is refused."""
    import compressai_hqa

    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "--collect-only", "-p",
         "no:cacheprovider", str(ROOT / "tests" / "test_ci_policy.py")],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
        env={**os.environ, "COMPRESSAI_HQA_REQUIRE_INSTALLED": "1",
             "PYTHONSAFEPATH": "1"},
    )  # fmt: skip
    if from_source_tree(compressai_hqa):
        assert out.returncode != 0
        assert "compressai_hqa is imported from the source tree" in out.stderr
    else:
        assert out.returncode == 0, out.stderr
