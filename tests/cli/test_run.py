"""``mrcohort run`` and ``mrcohort demo`` (mrcohort.cli.run): argument checks, and end to end
the real demo on a small phantom cohort with bad zips mixed in (one shared run, slow)."""

from __future__ import annotations

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
from tests.cli.demo_support import BAD, GOOD_IDS, N_GOOD

runner = CliRunner()


def test_run_refuses_a_missing_source_and_a_bad_cohort_name(tmp_path: Path) -> None:
    args = ["run", "--store", str(tmp_path / "store")]
    result = runner.invoke(app, [*args, "--source", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "does not exist" in result.stderr
    result = runner.invoke(app, [*args, "--source", str(tmp_path), "--cohort", "../x"])
    assert result.exit_code == 2 and "cohort name '../x'" in result.stderr
    assert not (tmp_path / "store").exists()


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
    assert sorted(set(df["participant_id"])) == GOOD_IDS
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
def test_one_qc_picture_per_participant_visit_and_their_gallery(demo_run):
    """The qc rows name one existing PNG per processed participant-visit (none for the failed
    ones); ``qc-gallery`` shows them."""
    out, _ = demo_run
    store = out / "tables"
    qc = read_table(store, "qc").to_pandas()
    paths = qc.groupby("participant_id")["picture_path"].unique()
    assert sorted(paths.index) == GOOD_IDS
    for (path,) in paths:
        png = store / path
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert 20_000 < png.stat().st_size < 400_000
    assert len(list((store / "qc_pictures").rglob("*.png"))) == N_GOOD
    result = runner.invoke(app, ["qc-gallery", "--store", str(store)])
    assert result.exit_code == 0, result.output
    assert f"{N_GOOD} participant-visits" in result.stdout
    assert (store / "qc_gallery.html").read_text().count("<img src=") == N_GOOD


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


def test_a_run_that_loses_rows_exits_non_zero_without_claiming_them(
    tmp_path, monkeypatch, capsys, client
):
    """``mrcohort run`` whose flushes overwrite each other (the bookkeeping bug of issue 13,
    injected): the store check fails the run, the command exits 2 with one ACCOUNTING line
    and never prints "N processed"."""
    import mrcohort.cli.run as cli_run
    from mrcohort.cli import main
    from mrcohort.jobs.flush import Flusher
    from mrcohort.jobs.run import run_job
    from tests.builders import dixon_manifest_cohort
    from tests.jobs.fakes import use_fake_segmenter

    use_fake_segmenter(monkeypatch)
    dixon_manifest_cohort(tmp_path / "m", ["p01", "p02"], shape=(4, 6, 5))
    real_flush = Flusher.flush

    def same_name_every_time(self):
        self.n_flushes = 0
        return real_flush(self)

    monkeypatch.setattr(Flusher, "flush", same_name_every_time)
    monkeypatch.setattr(  # the thread cluster: the fake model's patch reaches its workers
        cli_run, "_run", lambda cfg, wait: run_job(cfg, client=client, console=cli_run.console)
    )
    args = ["--source", str(tmp_path / "m"), "--layout", "manifest", "--store"]
    args += [str(tmp_path / "store"), "--cohort", "t", "--cpu", "--flush-every", "1"]
    monkeypatch.setattr(sys, "argv", ["mrcohort", "run", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    out, err = capsys.readouterr()
    assert "processed" not in out
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: ACCOUNTING: of 2 inputs discovery saw, 1 missing (p0")
    assert "no ledger row of this run" in last and "status.json" in last
