"""Start-up hook of compressai-hqa: CompressAI's own tools see the HQA models.

CompressAI has no plugin mechanism: ``python -m compressai.utils.eval_model`` and
``update_model`` only know the models in CompressAI's zoo tables, and never import
this project. The wheel therefore installs ``compressai_hqa_hook.pth`` into
site-packages, whose one line imports this module at Python start-up. It imports
nothing (``os`` and ``sys`` are loaded by ``site`` already) and puts a finder first
on ``sys.meta_path`` that answers two module names and passes every other import
on untouched:

* ``compressai``: once CompressAI's package has been imported (its ``__init__``
  imports ``compressai.zoo`` and so every table), ``import compressai_hqa`` runs,
  which registers HQA there (:func:`compressai_hqa.register`). Nothing happens
  when ``compressai_hqa`` is already being imported (it registers itself at the end
  of its own import), so there is no recursion.
* ``compressai.utils.eval_model.__main__``: CompressAI's evaluation script gets one
  statement, just before its ``if __name__ == "__main__":`` block, that hands HQA
  models to the project's evaluation (see
  :mod:`compressai_hqa.eval_model.compressai_script`); other models keep
  CompressAI's code.

``COMPRESSAI_HQA_AUTOREGISTER=0`` turns the hook off (nothing is installed). A
CompressAI outside the supported versions (:data:`SUPPORTED`) is left alone with a
warning, and so is one whose registration fails: the hook never makes an import of
CompressAI fail. ``pip uninstall compressai-hqa`` removes the ``.pth`` file and this
module (both are files of the wheel).
"""

import os
import sys

__all__ = ["ENV_VARIABLE", "SUPPORTED", "adapt_eval_model", "install", "supported"]

#: Set to ``0`` to turn the hook off.
ENV_VARIABLE = "COMPRESSAI_HQA_AUTOREGISTER"
#: CompressAI versions the hook acts on: ``>= SUPPORTED[0]`` and ``< SUPPORTED[1]``
#: (the range of setup.py's ``install_requires``).
SUPPORTED = ((1, 2, 8), (1, 3))

_PACKAGE = "compressai"
_EVAL_MAIN = "compressai.utils.eval_model.__main__"
_INJECTED = "__import__('_compressai_hqa_hook').adapt_eval_model(globals())"


def supported(version: str) -> bool:
    """Whether a CompressAI version is one the hook acts on.

    Args:
        version: ``compressai.__version__`` (``"1.2.8"``, ``"1.2.9.dev3"``, ...).

    Returns:
        True when its first three numbers are in :data:`SUPPORTED`.
    """
    parts = []
    for part in version.split(".")[:3]:
        digits = "".join(c for c in part if c.isdigit()) if part[:1].isdigit() else ""
        if not digits:
            break
        parts.append(int(digits))
    if not parts:
        return False
    return SUPPORTED[0] <= tuple(parts) < SUPPORTED[1]


def _warn(message: str) -> None:
    try:
        import warnings

        warnings.warn(
            f"compressai-hqa: {message} (set {ENV_VARIABLE}=0 to turn the start-up "
            "hook off)",
            RuntimeWarning,
            stacklevel=3,
        )
    except Exception:  # e.g. -W error: never break the importing program
        pass


def _compressai_version() -> str:
    module = sys.modules.get(_PACKAGE)
    return str(getattr(module, "__version__", ""))


def _register(module: object) -> None:
    """Runs after CompressAI's package has been imported."""
    if "compressai_hqa" in sys.modules:  # imported, or being imported: it registers
        return
    version = _compressai_version()
    if not supported(version):
        _warn(f"CompressAI {version or '(unknown version)'} is not supported; HQA is "
              "not registered with it")  # fmt: skip
        return
    try:
        import compressai_hqa  # noqa: F401  (its import registers HQA)
    except Exception as err:
        _warn(f"HQA could not be registered with CompressAI: {type(err).__name__}: "
              f"{err}")  # fmt: skip


def adapt_eval_model(namespace: dict) -> None:
    """Called from CompressAI's ``eval_model`` script: HQA models get HQA's
    evaluation (:func:`compressai_hqa.eval_model.compressai_script.adapt`).

    Args:
        namespace: the script's globals. A failure is a warning, never an error.
    """
    try:
        from compressai_hqa.eval_model.compressai_script import adapt

        adapt(namespace)
    except Exception as err:
        _warn(f"CompressAI's eval_model is not adapted to HQA: {type(err).__name__}: "
              f"{err}")  # fmt: skip


def _inject(source: str, filename: str) -> object | None:
    """CompressAI's eval_model script compiled with :data:`_INJECTED` before its
    ``if __name__ == "__main__":`` block; None if it has no such block."""
    import ast

    tree = ast.parse(source, filename)
    for index in range(len(tree.body) - 1, -1, -1):
        node = tree.body[index]
        if isinstance(node, ast.If) and ast.unparse(node.test).replace('"', "'") in (
            "__name__ == '__main__'",
            "'__main__' == __name__",
        ):
            break
    else:
        return None
    call = ast.parse(_INJECTED).body[0]
    for child in ast.walk(call):
        child.lineno = child.end_lineno = node.lineno  # type: ignore[attr-defined]
        child.col_offset = child.end_col_offset = 0  # type: ignore[attr-defined]
    tree.body.insert(index, call)
    return compile(tree, filename, "exec", dont_inherit=True)


class _Loader:
    """The real loader of a module, plus what the hook does with that module."""

    def __init__(self, loader: object, fullname: str) -> None:
        self._loader = loader
        self._fullname = fullname

    def __getattr__(self, name: str) -> object:
        return getattr(self._loader, name)

    def create_module(self, spec: object) -> object:
        return self._loader.create_module(spec)  # type: ignore[attr-defined]

    def get_code(self, fullname: str) -> object:
        """The module's code; for CompressAI's eval_model script, with the call
        that adapts it (``python -m`` runs what this returns)."""
        code = self._loader.get_code(fullname)  # type: ignore[attr-defined]
        if self._fullname != _EVAL_MAIN:
            return code
        try:
            source = self._loader.get_source(fullname)  # type: ignore[attr-defined]
            injected = _inject(source, code.co_filename)
        except Exception as err:
            _warn(f"CompressAI's eval_model could not be read: {err}")
            return code
        if injected is None:
            _warn("CompressAI's eval_model script has no __main__ block; not adapted")
            return code
        return injected

    def exec_module(self, module: object) -> None:
        try:
            if self._fullname == _EVAL_MAIN:
                exec(self.get_code(module.__name__), module.__dict__)  # type: ignore[attr-defined]
            else:
                self._loader.exec_module(module)  # type: ignore[attr-defined]
        finally:  # the module keeps its own loader, as without the hook
            module.__loader__ = self._loader  # type: ignore[attr-defined]
            spec = getattr(module, "__spec__", None)
            if spec is not None and spec.loader is self:
                spec.loader = self._loader
        if self._fullname == _PACKAGE:
            _register(module)


class _Finder:
    """First on ``sys.meta_path``: finds ``compressai`` and CompressAI's eval_model
    script with the other finders and wraps their loader; ignores the rest."""

    def find_spec(self, fullname: str, path: object = None, target: object = None):  # type: ignore[no-untyped-def]
        if fullname != _PACKAGE and fullname != _EVAL_MAIN:
            return None
        if fullname == _EVAL_MAIN and not supported(_compressai_version()):
            return None
        for finder in sys.meta_path:
            find_spec = getattr(finder, "find_spec", None)
            if finder is self or find_spec is None:
                continue
            spec = find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _Loader(spec.loader, fullname)
        return spec

    def __repr__(self) -> str:
        return "<compressai-hqa start-up hook>"


def install() -> bool:
    """Puts the finder first on ``sys.meta_path`` (once); run on import.

    When CompressAI is imported already, registers HQA at once.

    Returns:
        False when ``COMPRESSAI_HQA_AUTOREGISTER=0`` turns the hook off.
    """
    if os.environ.get(ENV_VARIABLE, "1").strip() == "0":
        return False
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
    if _PACKAGE in sys.modules:
        _register(sys.modules[_PACKAGE])
    return True


install()
