"""``mrcohort schema`` (mrcohort.cli.schema): the data dictionary on the command line."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from mrcohort.cli import app
from mrcohort.schemas.tables import SCHEMAS

DOC = Path(__file__).resolve().parents[2] / "docs" / "tables.md"
runner = CliRunner()


def test_plain_text_shows_every_table_and_column() -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert re.findall(r"^(\S+) \(\d+ columns\)$", out, flags=re.M) == list(SCHEMAS)
    firsts = {ln.split()[0] for ln in out.splitlines() if ln.startswith("  ") and ln.strip()}
    for sch in SCHEMAS.values():
        assert set(sch.names) <= firsts
    assert "| `" not in out  # not Markdown


def test_markdown_is_docs_tables_md() -> None:
    result = runner.invoke(app, ["schema", "--markdown"])
    assert result.exit_code == 0, result.output
    assert result.stdout == DOC.read_text()


def test_table_names_restrict_the_output() -> None:
    result = runner.invoke(app, ["schema", "qc", "ledger"])
    assert result.exit_code == 0, result.output
    assert re.findall(r"^(\S+) \(\d+ columns\)$", result.stdout, flags=re.M) == ["qc", "ledger"]
    result = runner.invoke(app, ["schema", "--markdown", "runs"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("# Tables\n\n")
    assert re.findall(r"^## (\S+)$", result.stdout, flags=re.M) == ["runs"]
    assert "| `n_discovered` | `int64` |" in result.stdout


def test_an_unknown_table_is_one_error_line() -> None:
    result = runner.invoke(app, ["schema", "qc", "organs"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("error: unknown table 'organs'; known: ")
    assert len(result.stderr.strip().splitlines()) == 1


def test_the_installed_command_prints_the_same_markdown() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mrcohort", "schema", "--markdown"],
        check=False,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == DOC.read_text()
