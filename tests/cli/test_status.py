"""``mrcohort status`` (mrcohort.cli.status) on a real store folder, through Typer."""

from __future__ import annotations

from pathlib import Path

import typer
from typer.testing import CliRunner

from mrcohort.cli.status import status
from tests.jobs.test_status import write_run

app = typer.Typer()
app.command("status")(status)


@app.command("other")
def _other() -> None:
    """A second command, so Typer keeps ``status`` as a subcommand."""


runner = CliRunner()


def test_status_prints_the_latest_run(tmp_path: Path) -> None:
    write_run(tmp_path, "20261201T154500Z-1a2b")
    result = runner.invoke(app, ["status", "--store", str(tmp_path)])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.startswith("run 20261201T154500Z-1a2b: interrupted")
    assert "plan: 1,204 to segment, 3,511 to measure only, 95,285 up to date" in out
    assert "1000101/2_0 [ingest] NOT_A_ZIP: bad zip" in out


def test_a_store_without_runs_is_one_error_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["status", "--store", str(tmp_path)])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: no runs in store {tmp_path}")
    assert len(result.stderr.strip().splitlines()) == 1
    result = runner.invoke(app, ["status", "--store", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "does not exist" in result.stderr
