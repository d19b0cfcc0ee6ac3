"""Readers for notebooks (`mrcohort.open_table`, `mrcohort.duckdb`) and ``mrcohort query``:
declared types, the current view (newest model and measurement version per participant-visit),
every version still there, model chosen by name."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import mrcohort
from mrcohort.cli import app
from mrcohort.jobs.run import run_job
from mrcohort.schemas.tables import SCHEMAS
from tests.builders import ukbb_zip
from tests.jobs.fakes import job_config, use_fake_segmenter


@pytest.fixture
def store(tmp_path: Path, monkeypatch, client) -> tuple[Path, list[str]]:
    """Two participants measured with erosion 3 mm, then one more participant and everything
    again with 2 mm: two measurement versions; returns the store and the two measure keys."""
    use_fake_segmenter(monkeypatch)
    src, store = tmp_path / "in", tmp_path / "store"
    for pid in ("1000001", "1000002"):
        ukbb_zip(src, pid)
    first = run_job(job_config(src, store), client=client)
    ukbb_zip(src, "1000003")
    second = run_job(job_config(src, store, **{"measure.erosion_mm": 2.0}), client=client)
    return store, [first.measure_key, second.measure_key]


def test_current_rows_are_the_newest_version_and_every_version_stays(store) -> None:
    root, (old, new) = store
    current = mrcohort.open_table("organ_metrics", root)
    every = mrcohort.open_table("organ_metrics", root, current=False)
    assert set(current["measure_key"]) == {new}
    assert current.groupby("participant_id").size().nunique() == 1  # 40 labels each
    assert set(current["participant_id"]) == {"1000001", "1000002", "1000003"}
    assert set(every["measure_key"]) == {old, new}
    assert len(every) == len(current) + 2 * 40  # the first two participants under 3 mm too
    qc = mrcohort.open_table("qc", root, columns=["participant_id", "measure_key", "qc_pass"])
    assert list(qc.columns) == ["participant_id", "measure_key", "qc_pass"]
    assert set(qc["measure_key"]) == {new}


def test_declared_types_model_by_name_and_other_outputs(store) -> None:
    root, _ = store
    table = mrcohort.open_table("organ_metrics", root, model="demo", cohort="t", to="arrow")
    assert table.schema.equals(SCHEMAS["organ_metrics"], check_metadata=False)
    assert table.num_rows == 3 * 40
    assert (
        mrcohort.open_table("organ_metrics", root, model="no-such-model", to="arrow").num_rows == 0
    )
    frame = mrcohort.open_table("ledger", root)
    assert isinstance(frame, pd.DataFrame) and len(frame) == 5
    with pytest.raises(ValueError, match="no columns"):
        mrcohort.open_table("qc", root, columns=["volume"])


def test_duckdb_has_every_table_and_the_current_views(store) -> None:
    root, (_, new) = store
    con = mrcohort.duckdb(root)
    views = {
        r[0] for r in con.sql("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()
    }
    assert set(SCHEMAS) | {"organ_metrics_current", "vessel_metrics_current", "qc_current"} <= views
    rows = con.sql(
        "SELECT m.model_name, o.measure_key, count(DISTINCT participant_id) FROM "
        "organ_metrics_current o JOIN models m USING (cohort, model_key) GROUP BY ALL"
    ).fetchall()
    assert rows == [("demo", new, 3)]
    assert con.sql("SELECT count(*) FROM failures").fetchall() == [(0,)]  # never written
    con.close()


def test_query_prints_and_writes(store, tmp_path: Path) -> None:
    root, _ = store
    runner = CliRunner()
    sql = "SELECT participant_id, count(*) AS n FROM organ_metrics_current GROUP BY 1 ORDER BY 1"
    shown = runner.invoke(app, ["query", "--store", str(root), sql])
    assert shown.exit_code == 0, shown.output
    assert "1000003" in shown.stdout and "3 rows" in shown.stderr
    out = tmp_path / "q.csv"
    assert (
        runner.invoke(app, ["query", "--store", str(root), sql, "--csv", str(out)]).exit_code == 0
    )
    assert pd.read_csv(out, dtype={"participant_id": str})["n"].tolist() == [40, 40, 40]
    bad = runner.invoke(app, ["query", "--store", str(root), "SELEC 1"])
    assert bad.exit_code == 2 and bad.stderr.strip().startswith("error: query failed")
    assert len(bad.stderr.strip().splitlines()) == 1
