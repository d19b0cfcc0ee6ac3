"""``mrcohort query`` is read-only: its SQL reads the store's data files and writes no file,
neither beside the store nor inside it (issue 13, "nobody else let in")."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from mrcohort.cli import app
from mrcohort.jobs.run import run_job
from tests.builders import ukbb_zip
from tests.jobs.fakes import job_config, use_fake_segmenter


@pytest.fixture
def store(tmp_path: Path, monkeypatch, client) -> Path:
    use_fake_segmenter(monkeypatch)
    src, store = tmp_path / "in", tmp_path / "store"
    ukbb_zip(src, "1000001")
    run_job(job_config(src, store), client=client)
    return store


def _files(root: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def test_query_reads_the_store_and_writes_nothing(store: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    part = next(store.glob("organ_metrics/*=*/**/part-*.parquet"))
    outside, before = tmp_path / "x.csv", _files(store)
    ok = runner.invoke(
        app, ["query", "--store", str(store), "SELECT count(*) AS n FROM organ_metrics_current"]
    )
    assert ok.exit_code == 0, ok.output
    assert "40" in ok.stdout
    writes = [
        f"COPY (SELECT 1) TO '{outside}'",
        f"COPY (SELECT 1) TO '{store / 'x.csv'}'",
        f"COPY (SELECT * FROM organ_metrics LIMIT 1) TO '{part}' (FORMAT parquet)",
        f"EXPORT DATABASE '{store / 'export'}'",
        f"ATTACH '{store / 'x.duckdb'}' AS x; CREATE TABLE x.t AS SELECT 1",
        "INSTALL httpfs",
        "SET enable_external_access = true; COPY (SELECT 1) TO '/tmp/mrcohort-x.csv'",
        "SELECT * FROM read_csv('/etc/passwd')",
    ]
    for sql in writes:
        refused = runner.invoke(app, ["query", "--store", str(store), sql])
        assert refused.exit_code == 2, (sql, refused.output)
        assert refused.stderr.strip().startswith("error: query failed"), sql
        assert len(refused.stderr.strip().splitlines()) == 1, sql
    assert not outside.exists() and not Path("/tmp/mrcohort-x.csv").exists()
    assert _files(store) == before
