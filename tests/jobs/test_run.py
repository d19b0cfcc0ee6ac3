"""The cohort job end to end on a thread-based Dask cluster (fake segmentation model): only
missing or stale work is done, and after any sequence of runs every key is stored once."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from mrcohort.jobs.run import run_job
from mrcohort.schemas.store import read_table
from tests.builders import ukbb_zip
from tests.jobs.fakes import job_config, use_fake_segmenter
from tests.jobs.store_checks import assert_no_duplicates


def data_files(store: Path) -> set[str]:
    """Table files other than the run records (``runs`` table, ``runs/`` folder)."""
    return {
        p.relative_to(store).as_posix()
        for p in store.rglob("*")
        if p.is_file()
        and p.parts[len(store.parts)] not in ("runs", ".mrcohort")
        and not p.name.startswith(".mrcohort")
    }


def _run(source: Path, store: Path, client, **overrides: object):
    return run_job(job_config(source, store, **overrides), client=client)


def test_rerun_grow_change_params_and_recover_a_failure(tmp_path, monkeypatch, client):
    fake = use_fake_segmenter(monkeypatch)
    src, store = tmp_path / "in", tmp_path / "store"
    for pid in ("1000001", "1000002"):
        ukbb_zip(src, pid)
    (src / "1000003_20201_2_0.zip").write_bytes(b"truncated download")

    first = _run(src, store, client)
    assert first.n_planned["segment"] == 3 and (first.n_ok, first.n_failed) == (2, 1)
    assert fake.calls == 2
    files = data_files(store)

    again = _run(src, store, client)  # nothing to do: no work, no new table file
    assert again.plan.startswith("0 to segment, 0 to measure only, 3 up to date")
    assert fake.calls == 2 and data_files(store) == files
    assert_no_duplicates(store)

    ukbb_zip(src, "1000004")  # the cohort grows
    grown = _run(src, store, client)
    assert grown.n_planned["segment"] == 1 and grown.n_planned["skip"] == 3
    assert fake.calls == 3

    changed = _run(src, store, client, **{"measure.erosion_mm": 2.0})  # new parameters
    assert changed.n_planned["measure"] == 3 and changed.n_planned["segment"] == 1
    assert fake.calls == 3, "new parameters must not segment again"

    ukbb_zip(src, "1000003")  # the bad download replaced by a good zip
    fixed = _run(src, store, client, **{"measure.erosion_mm": 2.0})
    assert fixed.n_planned["segment"] == 1 and fixed.n_ok == 1

    assert_no_duplicates(store)
    organ = read_table(store, "organ_metrics").to_pandas()
    per_key = organ.groupby("measure_key")["participant_id"].nunique().to_dict()
    assert sorted(per_key.values()) == [3, 4]  # old rows stay queryable under their key
    failures = read_table(store, "failures").to_pandas()
    # 1000003's failure under the new parameters was superseded by its success
    assert set(failures["participant_id"]) == {"1000003"}
    # ... and the one left is the failure under the first parameters (still true for them)
    assert failures["measure_key"].tolist() == [first.measure_key]
    assert changed.measure_key != first.measure_key
    scans = read_table(store, "scans").to_pandas()
    assert scans.groupby("participant_id").size().to_dict() == {
        p: 24 for p in ("1000001", "1000002", "1000003", "1000004")
    }


def test_source_spelling_and_touched_files_change_nothing(tmp_path, monkeypatch, client):
    fake = use_fake_segmenter(monkeypatch)
    src, store = tmp_path / "in", tmp_path / "store"
    ukbb_zip(src, "1000001")
    _run(src, store, client)
    files = data_files(store)
    monkeypatch.chdir(tmp_path)
    relative = _run(Path("in"), Path("store"), client)  # relative instead of absolute
    assert relative.n_planned["skip"] == 1 and data_files(store) == files
    copy = tmp_path / "copy"
    shutil.copytree(src, copy)  # same bytes, new times: hashed again, nothing recomputed
    os.utime(copy / "1000001_20201_2_0.zip", (1, 1))
    moved = _run(copy, store, client)
    assert moved.n_planned["segment"] == 1 and moved.n_ok == 1
    assert fake.calls == 1, "an input with known content must not be segmented again"
    ledger = read_table(store, "ledger").to_pandas().sort_values("computed_at")
    assert ledger["action"].tolist() == ["segment", "unchanged"]
    new_files = data_files(store) - files
    assert new_files and all(f.startswith("ledger/") for f in new_files)
    again = _run(copy, store, client)  # the new fingerprint is known now
    assert again.n_planned["skip"] == 1
    assert_no_duplicates(store)
    assert read_table(store, "organ_metrics").num_rows == 40


def test_force_recomputes_and_replaces(tmp_path, monkeypatch, client):
    fake = use_fake_segmenter(monkeypatch)
    src, store = tmp_path / "in", tmp_path / "store"
    ukbb_zip(src, "1000001")
    ukbb_zip(src, "1000002")
    _run(src, store, client)
    forced = _run(src, store, client, **{"run.force": True})
    assert forced.n_planned["segment"] == 2 and fake.calls == 4
    assert_no_duplicates(store)
    assert read_table(store, "organ_metrics").num_rows == 2 * 40


def test_new_model_key_keeps_old_rows(tmp_path, monkeypatch, client):
    use_fake_segmenter(monkeypatch)
    src, store = tmp_path / "in", tmp_path / "store"
    ukbb_zip(src, "1000001")
    one = _run(src, store, client)
    two = _run(src, store, client, **{"model.tile_step_size": 0.8})  # labels may change
    assert one.model_key != two.model_key and two.n_planned["segment"] == 1
    organ = read_table(store, "organ_metrics").to_pandas()
    assert organ.groupby("model_key").size().to_dict() == {one.model_key: 40, two.model_key: 40}
    assert len(list((store / "segmentations").iterdir())) == 2
    assert_no_duplicates(store)


def test_rejected_inputs_sharing_an_identity_each_keep_a_row(tmp_path, monkeypatch, client):
    """One good participant and two manifest rows with the same bad id: nothing is lost."""
    from tests.builders import dixon_manifest_cohort, write_manifest

    use_fake_segmenter(monkeypatch)
    src = tmp_path / "m"
    dixon_manifest_cohort(src, ["p01"], shape=(4, 6, 5))
    lines = (src / "manifest.csv").read_text().splitlines()
    rows = [line.split(",") for line in lines[1:]]
    rows += [["bad id", "base", "dixon", "in", "1", "p01/in_0.nii.gz"]] * 2
    write_manifest(src / "manifest.csv", rows)
    summary = _run(src, tmp_path / "store", client, **{"input.layout": "manifest"})
    assert (summary.n_ok, summary.n_failed) == (1, 2)
    failures = read_table(tmp_path / "store", "failures").to_pandas()
    assert sorted(failures["code"]) == ["BAD_PARTICIPANT_ID", "BAD_PARTICIPANT_ID"]
    assert failures["slot"].nunique() == 2
    assert read_table(tmp_path / "store", "organ_metrics").num_rows == 40
    again = _run(src, tmp_path / "store", client, **{"input.layout": "manifest"})
    assert again.plan.startswith("0 to segment, 0 to measure only, 3 up to date")
    # a bad row is identified by its content: a row inserted above it changes nothing
    write_manifest(
        src / "manifest.csv", [["other bad", "base", "dixon", "in", "1", "p01/in_0.nii.gz"], *rows]
    )
    moved = _run(src, tmp_path / "store", client, **{"input.layout": "manifest"})
    assert moved.n_planned["reject"] == 1 and moved.n_planned["skip"] == 3
    assert_no_duplicates(tmp_path / "store")


@pytest.mark.slow
def test_embedded_cluster_dashboard_on_loopback_only_when_asked(tmp_path):
    """The embedded cluster (real worker processes): no dashboard by default; with
    ``cluster.dashboard`` its address on 127.0.0.1 is printed and logged."""
    import io

    from rich.console import Console

    src = tmp_path / "in"
    src.mkdir()
    (src / "1000001_20201_2_0.zip").write_bytes(b"not a zip")  # fails fast in a worker
    out = io.StringIO()
    quiet = run_job(
        job_config(src, tmp_path / "a", **{"cluster.workers": 1}), console=Console(file=out)
    )
    assert quiet.n_failed == 1 and "dashboard" not in out.getvalue()
    out = io.StringIO()
    run_job(
        job_config(src, tmp_path / "b", **{"cluster.workers": 1, "cluster.dashboard": True}),
        console=Console(file=out, width=200),
    )
    assert "Dask dashboard: http://127.0.0.1:" in out.getvalue()
    (run_dir,) = (tmp_path / "b" / "runs").glob("2*")
    assert "Dask dashboard: http://127.0.0.1:" in (run_dir / "log.txt").read_text()
