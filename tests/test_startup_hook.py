"""The start-up hook (``_compressai_hqa_hook``, installed as a ``.pth`` file):
HQA in CompressAI's tables without importing anything at start-up, off by an
environment variable, harmless without CompressAI or with another version."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

from pathlib import Path

import pytest

from conftest import ROOT

import _compressai_hqa_hook as hook

CHILD_ENV = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    """``python -c code`` outside the source tree (``-c`` puts the cwd first on
    ``sys.path``)."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
        text=True, timeout=300, env={**CHILD_ENV, **env}, cwd=ROOT.parent,
    )  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def _hook_installed() -> None:
    out = _python("import sys; print('_compressai_hqa_hook' in sys.modules)")
    if out.stdout.strip() != "True":
        pytest.fail(
            "the start-up hook is not installed in this environment (compressai_hqa_"
            "hook.pth): install the package with pip (pip install . or -e .)"
        )


def test_start_up_imports_the_hook_and_nothing_heavy() -> None:
    out = _python(
        """
        import sys
        heavy = sorted(m for m in sys.modules if m.split('.')[0] in
                       ('torch', 'compressai', 'compressai_hqa', 'numpy'))
        print(heavy, repr(sys.meta_path[0]) + repr(sys.meta_path[1]))
        """
    )
    assert out.returncode == 0, out.stderr
    heavy, finders = out.stdout.split("]", 1)
    assert heavy == "["
    assert "compressai-hqa start-up hook" in finders
    assert out.stderr == ""


def test_importing_compressai_registers_hqa_for_its_scripts() -> None:
    out = _python(
        """
        import sys
        import compressai.zoo as zoo
        print('compressai_hqa' in sys.modules, 'hqa-mnist' in zoo.image_models)
        # update_model copies the architectures when it is imported
        from compressai.utils.update_model.__main__ import models
        print(sorted(n for n in models if n.startswith('hqa')))
        import compressai
        print(type(compressai.__loader__).__name__)  # the real loader, kept
        """
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "True True",
        "['hqa', 'hqa-celeba64', 'hqa-mnist']",
        "SourceFileLoader",
    ]


def test_the_environment_variable_turns_the_hook_off() -> None:
    out = _python(
        """
        import sys
        import compressai.zoo as zoo
        print(any('start-up hook' in repr(f) for f in sys.meta_path),
              'compressai_hqa' in sys.modules, 'hqa-mnist' in zoo.image_models)
        """,
        COMPRESSAI_HQA_AUTOREGISTER="0",
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False", "False"]


def test_without_compressai_imports_fail_as_usual() -> None:
    out = _python(
        """
        import sys
        sys.path[:] = [p for p in sys.path if 'packages' not in p]
        try:
            import compressai
        except ModuleNotFoundError as err:
            print(err.name)
        """
    )
    assert out.returncode == 0 and out.stderr == ""
    assert out.stdout.strip() == "compressai"


def _fake_package(root: Path, name: str, init: str) -> Path:
    (root / name).mkdir(parents=True)
    (root / name / "__init__.py").write_text(textwrap.dedent(init))
    return root


def test_another_compressai_version_is_left_alone_with_a_warning(
    tmp_path: Path,
) -> None:
    fake = _fake_package(tmp_path, "compressai", "__version__ = '1.3.0'\nzoo = {}\n")
    out = _python(
        "import sys, compressai; print(compressai.zoo, 'compressai_hqa' in sys.modules)",
        PYTHONPATH=str(fake),
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["{}", "False"]
    assert "CompressAI 1.3.0 is not supported" in out.stderr
    assert "COMPRESSAI_HQA_AUTOREGISTER=0" in out.stderr


def test_a_failing_registration_is_a_warning_not_an_error(tmp_path: Path) -> None:
    broken = _fake_package(tmp_path, "compressai_hqa", "raise ImportError('broken')\n")
    out = _python(
        "import compressai.zoo as z; print('hqa-mnist' in z.image_models)",
        PYTHONPATH=str(broken),
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
    assert "HQA could not be registered with CompressAI: ImportError: broken" in (
        out.stderr
    )


@pytest.mark.parametrize(
    ("version", "expected"),
    [("1.2.8", True), ("1.2.9.dev3", True), ("1.2.10", True), ("1.2.7", False),
     ("1.3.0", False), ("2.0", False), ("", False), ("unknown", False)],
)  # fmt: skip
def test_supported_versions(version: str, expected: bool) -> None:
    assert hook.supported(version) is expected


def test_the_supported_range_is_the_one_setup_py_requires() -> None:
    setup = (ROOT / "setup.py").read_text()
    low, high = re.search(r'"compressai>=([\d.]+),<([\d.]+)"', setup).groups()
    assert hook.SUPPORTED == tuple(
        tuple(int(p) for p in v.split(".")) for v in (low, high)
    )


def test_the_eval_model_script_gets_one_call_before_its_main_block() -> None:
    import compressai.utils.eval_model.__main__ as script

    source = Path(script.__file__).read_text()
    code = hook._inject(source, script.__file__)
    assert code is not None and code.co_filename == script.__file__
    namespace: dict = {"__name__": "not_main"}
    exec(code, namespace)  # runs the call: the script's functions are adapted
    assert namespace["inference"].hqa_adapted
    assert namespace["inference_entropy_estimation"].hqa_adapted
    assert hook._inject("def main():\n    pass\n", "x.py") is None
