"""The ``mrcohort`` app (mrcohort.cli.app): ``--version``, every command's help, ``main``."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from mrcohort import __version__
from mrcohort.cli import app, main
from mrcohort.errors import MrcohortError

COMMANDS = (
    "demo",
    "phantom",
    "ingest",
    "stitch",
    "run",
    "reprocess",
    "status",
    "cluster",
    "query",
    "segment",
    "measure",
    "schema",
    "train-demo-model",
)
#: The module (``mrcohort.cli.app`` as an attribute is the Typer app it defines).
APP_MODULE = importlib.import_module("mrcohort.cli.app")
runner = CliRunner()


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"mrcohort {__version__}\n"


def test_python_dash_m_runs_the_command() -> None:
    for module in ("mrcohort", "mrcohort.cli"):
        proc = subprocess.run(
            [sys.executable, "-m", module, "--version"],
            check=False,
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == f"mrcohort {__version__}"


def test_every_command_is_listed() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0, result.output
    for name in COMMANDS:
        assert f"\n  {name} " in result.stdout, name


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_help_shows_flags_as_flags(command: str) -> None:
    result = runner.invoke(app, [*command.split(), "--help"])
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "--help" in text
    for placeholder in ("BOOLEAN", "<bool>", "--no-"):
        assert placeholder not in text, (command, placeholder)


def test_flags_take_no_value() -> None:
    text = runner.invoke(app, ["run", "--help"]).stdout
    for flag in ("--cpu", "--body-comp"):
        (line,) = [ln for ln in text.splitlines() if ln.strip().startswith(flag)]
        assert line.split()[1] != "<bool>"
        assert not line.strip().removeprefix(flag).lstrip().startswith("<")


def test_main_turns_expected_errors_into_one_line(monkeypatch, capsys) -> None:
    def boom(*_args, **_kwargs):
        raise MrcohortError("SOME_CODE", "what went wrong", stage="ingest")

    monkeypatch.setattr(APP_MODULE, "app", boom)
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.strip() == "error: SOME_CODE: what went wrong"

    def gone(*_args, **_kwargs):
        raise FileNotFoundError(2, "No such file or directory", "/gone")

    monkeypatch.setattr(APP_MODULE, "app", gone)
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().startswith("error: [Errno 2]")
