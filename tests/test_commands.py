"""compressai_hqa.commands: every command line's errors are one line on stderr and
the documented exit status (1: usage, 2: bad data, 130: interrupted)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from compressai_hqa import commands
from compressai_hqa.codec import cli
from compressai_hqa.demo import main as demo_main
from compressai_hqa.eval_model.__main__ import main as eval_main
from compressai_hqa.figures.__main__ import main as figures_main
from compressai_hqa.training.cli import main as train_main
from compressai_hqa.training.mmse.cli import main as mmse_main


def _error(capsys, main: Callable, argv: list[str]) -> tuple[int, str]:
    """(exit status, the one stderr line) of a command that fails."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if not line.startswith("warning:")]
    assert len(lines) == 1, err
    assert ": error: " in lines[0], err
    return exit_.value.code, lines[0]


def test_the_codec_launcher_repeats_the_exit_statuses() -> None:
    """``compressai-hqa`` parses without importing the package: its copies agree."""
    assert (commands.EXIT_OK, commands.EXIT_USAGE, commands.EXIT_DATA) == (0, 1, 2)
    assert cli.EXIT_USAGE == commands.EXIT_USAGE
    assert cli.EXIT_DATA == commands.EXIT_DATA
    assert cli.EXIT_INTERRUPTED == commands.EXIT_INTERRUPTED == 130


def _cases(tmp: Path) -> dict[str, tuple[Callable, str, list[str], list[str] | None]]:
    """Entry point -> (main, prog, a bad argument, a missing input file)."""
    missing = str(tmp / "missing.pth")
    out = str(tmp / "out.png")
    return {
        "codec": (
            cli.main,
            "compressai-hqa",
            ["decompress", "x.hqa", "-o", str(tmp / "d"), "--max-memory", "0"],
            ["info", str(tmp / "missing.hqa")],
        ),
        "eval_model": (
            eval_main,
            "python -m compressai_hqa.eval_model",
            ["checkpoint", str(tmp), "-a", "hqa", "-p", missing, "--no-such-option"],
            ["checkpoint", str(tmp / "no-folder"), "-a", "hqa", "-p", missing],
        ),
        "figures": (
            figures_main,
            "python -m compressai_hqa.figures",
            ["layers", "--pretrained", "-o", out, "--scale", "two"],
            ["layers", "--checkpoint", missing, "-o", out],
        ),
        "training": (
            train_main,
            "train_hqa.py",
            ["--steps", "many"],
            ["--data-root", str(tmp / "no-data"), "--output", str(tmp / "run")],
        ),
        "training.mmse": (
            mmse_main,
            "python -m compressai_hqa.training.mmse",
            ["train", "--data-root", str(tmp), "--output", str(tmp), "--layer", "x"],
            ["export", missing, "-o", str(tmp / "mmse.pth"), "--weights", missing],
        ),
        "demo": (demo_main, "python -m compressai_hqa.demo", ["--columns", "x"], None),
    }


@pytest.mark.parametrize(
    "name", ["codec", "eval_model", "figures", "training", "training.mmse", "demo"]
)
def test_bad_arguments_and_missing_files_exit_1_in_one_line(
    tmp_path: Path, capsys, name: str
) -> None:
    main, prog, bad, missing = _cases(tmp_path)[name]
    status, line = _error(capsys, main, bad)
    assert status == commands.EXIT_USAGE and line.startswith(prog), line
    if missing is not None:
        status, line = _error(capsys, main, missing)
        assert status == commands.EXIT_USAGE and line.startswith(prog), line
        assert "missing" in line or "no-" in line, line


def test_bad_data_exits_2_in_one_line(tmp_path: Path, capsys) -> None:
    corrupt = tmp_path / "corrupt.hqa"
    corrupt.write_bytes(b"\x89HQA" + bytes(40))
    status, line = _error(capsys, cli.main, ["info", str(corrupt)])
    assert status == commands.EXIT_DATA, line
    text = tmp_path / "weights.pth"
    text.write_text("not a checkpoint\n")
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "fake.png").write_bytes(b"this is not a PNG")
    argv = ["checkpoint", str(folder), "-a", "hqa", "-p", str(text)]
    status, line = _error(capsys, eval_main, argv)
    assert status == commands.EXIT_DATA and "fake.png" in line, line


def test_run_command_maps_errors_and_interrupts(capsys) -> None:
    def raises(err: BaseException) -> Callable[[], None]:
        def command() -> None:
            raise err

        return command

    for err, status in [
        (commands.UsageError("bad option"), 1),
        (FileNotFoundError(2, "No such file", "x.png"), 1),
        (commands.DataError("corrupt"), 2),
        (ValueError("odd value"), 1),  # passed as a usage type below
        (KeyboardInterrupt(), 130),
    ]:
        with pytest.raises(SystemExit) as exit_:
            commands.run_command(raises(err), "prog", usage=(ValueError,))
        assert exit_.value.code == status, err
        (line,) = capsys.readouterr().err.splitlines()
        assert line.startswith("prog: "), line
    with pytest.raises(RuntimeError):  # a bug is not an error message
        commands.run_command(raises(RuntimeError("bug")), "prog")
    assert commands.run_command(lambda: 7, "prog") == 7
