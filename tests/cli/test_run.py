"""``mrcohort run`` and ``mrcohort demo`` (mrcohort.cli.run): argument checks, and end to end
the real demo on a small phantom cohort with bad zips mixed in (one shared run, slow)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds
import pytest
from typer.testing import CliRunner

from mrcohort.cli import app
from mrcohort.labels import MRSEG_LABELS
from mrcohort.schemas.store import read_table
from mrcohort.schemas.tables import schema
from tests.builders import rezip, ukbb_zip, without_channel

N_GOOD = 2
BAD = {
    "1000101_20201_2_0.zip": "NOT_A_ZIP",
    "1000102_20201_2_0.zip": "EMPTY_ZIP",
    "1000103_20201_2_0.zip": "MISSING_CHANNEL",
}
runner = CliRunner()


def test_run_refuses_a_missing_source_and_a_bad_cohort_name(tmp_path: Path) -> None:
    args = ["run", "--store", str(tmp_path / "store")]
    result = runner.invoke(app, [*args, "--source", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "does not exist" in result.stderr
    result = runner.invoke(app, [*args, "--source", str(tmp_path), "--cohort", "../x"])
    assert result.exit_code == 2 and "cohort name '../x'" in result.stderr
    assert not (tmp_path / "store").exists()


def _write_bad_zips(folder: Path, scratch: Path) -> None:
    (folder / "1000101_20201_2_0.zip").write_bytes(b"this is not a zip file")
    rezip(folder / "1000102_20201_2_0.zip", {})
    # a complete zip without its fat (F) series: the missing channel is the only fault
    without_channel(ukbb_zip(scratch, "1000103"), folder / "1000103_20201_2_0.zip", "_F")


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """The one demo run every slow test here reads."""
    out = tmp_path_factory.mktemp("demo")
    _write_bad_zips(out, tmp_path_factory.mktemp("scratch"))  # `demo` adds the good ones
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mrcohort.cli",
            "demo",
            "--out",
            str(out),
            "--participants",
            str(N_GOOD),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    return out, proc


@pytest.mark.slow
def test_demo_exits_zero_with_summary_table_and_warning_lines(demo_run):
    _, proc = demo_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "vs phantom truth" in proc.stdout and "liver" in proc.stdout
    assert f"{N_GOOD} processed, {len(BAD)} failed" in proc.stdout
    assert f"{N_GOOD + len(BAD)} to segment, 0 to measure only, 0 up to date" in proc.stderr
    assert f"WARNING: {len(BAD)} participant-visits failed" in proc.stderr
    assert "1000101 [ingest] NOT_A_ZIP" in proc.stderr


@pytest.mark.slow
def test_organ_metrics_schema_and_one_row_per_participant_label(demo_run):
    out, _ = demo_run
    files = list((out / "tables" / "organ_metrics").rglob("*.parquet"))
    assert files and all("cohort=demo" in str(f) for f in files)
    table = read_table(out / "tables", "organ_metrics")
    assert table.schema.equals(schema("organ_metrics"), check_metadata=False)
    # the files themselves hold the declared columns (less the hive partition keys)
    raw = ds.dataset(files, format="parquet").schema
    declared = schema("organ_metrics")
    for name in raw.names:
        assert raw.field(name).type == declared.field(name).type, name
    df = table.to_pandas()
    assert len(df) == N_GOOD * len(MRSEG_LABELS)
    assert not df.duplicated(["participant_id", "visit", "label_id"]).any()
    assert set(df["participant_id"]) == {"1000001", "1000002"}
    assert df["model_key"].nunique() == 1 and df["input_sha256"].str.len().eq(64).all()


@pytest.mark.slow
def test_liver_volume_and_fat_fraction_within_10_percent(demo_run):
    out, _ = demo_run
    df = read_table(out / "tables", "organ_metrics").to_pandas()
    truth = pd.read_csv(out / "truth.csv", dtype={"participant_id": str})
    m = df.merge(truth, on=["participant_id", "label_id"], suffixes=("", "_true"))
    liver = m[m["label_name"] == "liver"]
    assert len(liver) == N_GOOD
    for _, r in liver.iterrows():
        assert r["volume_ml"] == pytest.approx(r["volume_ml_true"], rel=0.10)
        assert r["ff_median"] == pytest.approx(r["fat_fraction"], rel=0.10)


@pytest.mark.slow
def test_bad_zips_are_failure_rows_with_codes(demo_run):
    out, _ = demo_run
    fails = read_table(out / "tables", "failures").to_pandas()
    got = dict(zip(fails["participant_id"], fails["code"], strict=True))
    assert got == {name.split("_")[0]: code for name, code in BAD.items()}
    assert (fails["stage"] == "ingest").all()
    assert fails["message"].str.len().gt(0).all()


@pytest.mark.slow
def test_notebook_runs_against_the_demo_tables(demo_run, tmp_path):
    import nbformat
    from nbclient import NotebookClient

    out, _ = demo_run
    nb_path = Path(__file__).resolve().parents[2] / "notebooks" / "01_query_tables.ipynb"
    nb = nbformat.read(nb_path, as_version=4)
    os.environ["MRCOHORT_STORE"] = str(out / "tables")
    try:
        NotebookClient(
            nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
        ).execute()
    finally:
        del os.environ["MRCOHORT_STORE"]
    assert (out / "tables" / "liver_ff_hist.png").is_file()


@pytest.mark.slow
def test_the_runs_record_repeats_status_and_reprocess(demo_run):
    """``runs/<run_id>/config.toml`` repeats the run (nothing to do: no new table file);
    ``status`` reports it; ``reprocess`` with unchanged weights is a no-op too."""
    out, _ = demo_run
    store = out / "tables"
    (run_dir,) = [p for p in (store / "runs").iterdir() if p.name[0].isdigit()]
    assert {p.name for p in run_dir.iterdir()} == {"config.toml", "log.txt", "status.json"}
    assert "3 to segment" not in (run_dir / "log.txt").read_text()
    tables_before = sorted(p for p in (store / "organ_metrics").rglob("*.parquet"))
    again = runner.invoke(app, ["run", "--config", str(run_dir / "config.toml")])
    assert again.exit_code == 0, again.output
    assert f"0 to segment, 0 to measure only, {N_GOOD + len(BAD)} up to date" in again.stderr
    status = runner.invoke(app, ["status", "--store", str(store)])
    assert status.exit_code == 0 and "up to date" in status.stdout
    again = runner.invoke(app, ["reprocess", "--store", str(store)])
    assert again.exit_code == 0, again.output
    assert "0 to segment, 0 to measure only" in again.stderr
    assert sorted(p for p in (store / "organ_metrics").rglob("*.parquet")) == tables_before
    runs = read_table(store, "runs").to_pandas()
    assert len(runs) == 3 and set(runs["state"]) == {"finished"}
    assert runs["n_ok"].tolist() == [N_GOOD, 0, 0]


def test_reprocess_never_repeats_force_or_retry(tmp_path, monkeypatch):
    """A forced run's recorded config must not make every nightly reprocess a full one."""
    import mrcohort.cli.run as cli_run
    from mrcohort.config import dump_config, load_config

    store = tmp_path / "store"
    run_dir = store / "runs" / "20261201T000000Z-aaaaaa"
    run_dir.mkdir(parents=True)
    forced = load_config(
        None,
        {
            "input.source": tmp_path,
            "store.path": store,
            "run.force": True,
            "run.retry_failed": True,
        },
    )
    (run_dir / "config.toml").write_text(dump_config(forced))
    (run_dir / "status.json").write_text("{}")
    seen = []
    monkeypatch.setattr(cli_run, "_run", lambda cfg, wait: seen.append(cfg) or _Summary())
    monkeypatch.setattr(cli_run, "_report", lambda summary: None)
    result = runner.invoke(app, ["reprocess", "--store", str(store)])
    assert result.exit_code == 0, result.output
    assert (seen[0].run.force, seen[0].run.retry_failed) == (False, False)


class _Summary:
    pass
