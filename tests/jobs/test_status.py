"""A store's latest run (mrcohort.jobs.status): which run, live or interrupted against the
store lock, and the text ``mrcohort status`` prints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mrcohort.errors import MrcohortError
from mrcohort.jobs.lock import StoreLock
from mrcohort.jobs.progress import ProgressTracker, write_status
from mrcohort.jobs.status import format_status, latest_run, read_status

PLAN = {"to_segment": 1204, "to_measure": 3511, "up_to_date": 95285}


def write_run(store: Path, run_id: str, *, finish: bool = False) -> dict:
    """A run folder with the status.json of a run part way through (or finished)."""
    tracker = ProgressTracker(run_id, extra={"plan": PLAN, "host": "h", "pid": 4242})
    tracker.start(total=100_000, skipped=95_285)
    tracker.submitted(20)
    for _ in range(12):
        tracker.finished(True)
    row = {"participant_id": "1000101", "visit": "2_0", "code": "NOT_A_ZIP", "message": "bad zip"}
    tracker.finished(False, "ingest", row)
    if finish:
        tracker.close()
    snap = tracker.snapshot()
    write_status(store / "runs" / run_id / "status.json", snap)
    return snap


def test_latest_run_is_the_newest_with_a_status(tmp_path: Path) -> None:
    assert latest_run(tmp_path) is None
    (tmp_path / "runs").mkdir()
    assert latest_run(tmp_path) is None
    write_run(tmp_path, "20261201T154500Z-1a2b")
    write_run(tmp_path, "20261202T090000Z-0000")
    write_run(tmp_path, "20261130T235959Z-ffff")
    (tmp_path / "runs" / "20261203T000000Z-9999").mkdir()  # just started: no status yet
    assert latest_run(tmp_path).name == "20261202T090000Z-0000"


def test_a_running_status_without_its_process_is_interrupted(tmp_path: Path) -> None:
    assert read_status(tmp_path) is None
    write_run(tmp_path, "20261201T154500Z-1a2b")
    status = read_status(tmp_path)
    assert status["state"] == "interrupted" and status["live"] is False
    assert status["done"] == 12 and "holder" not in status
    assert status["run_dir"] == str(tmp_path / "runs" / "20261201T154500Z-1a2b")


def test_a_running_status_whose_run_holds_the_lock_is_live(tmp_path: Path) -> None:
    write_run(tmp_path, "20261201T154500Z-1a2b")
    with StoreLock(tmp_path, run_id="20261201T154500Z-1a2b"):
        status = read_status(tmp_path)
    assert status["state"] == "running" and status["live"] is True


def test_another_holder_is_named(tmp_path: Path) -> None:
    write_run(tmp_path, "20261201T154500Z-1a2b")
    with StoreLock(tmp_path, run_id="20261202T000000Z-beef"):
        status = read_status(tmp_path)
    assert status["state"] == "interrupted"
    assert status["holder"]["run_id"] == "20261202T000000Z-beef"
    assert "the store is now in use by run 20261202T000000Z-beef (pid" in format_status(status)


def test_a_finished_run_stays_finished(tmp_path: Path) -> None:
    write_run(tmp_path, "20261201T154500Z-1a2b", finish=True)
    status = read_status(tmp_path)
    assert status["state"] == "finished" and status["live"] is False
    text = format_status(status)
    assert "finished 20" in text and "(took " in text and "ETA" not in text


def test_an_unreadable_status_is_a_coded_error(tmp_path: Path) -> None:
    path = tmp_path / "runs" / "20261201T154500Z-1a2b" / "status.json"
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with pytest.raises(MrcohortError, match="BAD_STATUS"):
        read_status(tmp_path)


def test_format_status_text(tmp_path: Path) -> None:
    snap = write_run(tmp_path, "20261201T154500Z-1a2b")
    status = json.loads(json.dumps(snap)) | {"rate_per_min": 95.2, "eta_seconds": 62520}
    lines = format_status(status).splitlines()
    assert lines[0] == "run 20261201T154500Z-1a2b: running (pid 4242 on host h)"
    assert lines[1].startswith(f"started {snap['started_at']}, updated {snap['updated_at']} (")
    assert "plan: 1,204 to segment, 3,511 to measure only, 95,285 up to date" in lines
    assert "12 done, 1 failed, 95,285 skipped, 7 running, 4,702 remaining of 100,000" in lines
    assert "rate: 95.2/min, ETA 17h22m" in lines
    assert "failures by stage: ingest 1" in lines
    assert lines[-2:] == ["latest failures (1):", "  1000101/2_0 [ingest] NOT_A_ZIP: bad zip"]
    status["state"] = "interrupted"
    text = format_status(status)
    assert "interrupted" in text.splitlines()[0] and "rate:" not in text


def test_format_status_without_a_plan_or_failures() -> None:
    status = {"run_id": "r", "state": "running", "total": 5, "done": 1, "remaining": 4}
    text = format_status(status)
    assert "plan:" not in text and "failures" not in text
    assert "1 done, 0 failed, 0 skipped, 0 running, 4 remaining of 5" in text


def test_a_failed_accounting_names_its_inputs(tmp_path: Path) -> None:
    snap = write_run(tmp_path, "20261201T154500Z-1a2b", finish=True)
    snap["state"] = "failed"
    snap["accounting"] = {
        "ok": False,
        "inputs": 3,
        "n_missing": 1,
        "n_duplicated": 0,
        "missing": {"p01/base": "no ledger row of this run"},
        "duplicated": {},
    }
    text = format_status(snap)
    assert "ACCOUNTING: 1 inputs missing from the store, 0 duplicated (of 3)" in text
    assert "  missing p01/base: no ledger row of this run" in text
    snap["accounting"] = {"ok": True, "inputs": 3, "n_missing": 0, "n_duplicated": 0}
    assert "ACCOUNTING" not in format_status(snap)
