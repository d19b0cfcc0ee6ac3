"""Run progress (mrcohort.jobs.progress): counts, rate and ETA on a fake clock, the snapshot,
plain lines at the interval off a terminal, the bar on one, and status.json."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest
from rich.console import Console

from mrcohort.jobs.progress import (
    ProgressCounts,
    ProgressReporter,
    ProgressTracker,
    format_duration,
    progress_line,
    write_status,
)

EPOCH = 1_796_138_400.0  # 2026-12-01T15:20:00Z


class FakeClock:
    """Seconds that move only when a test says so."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def wall(self) -> float:
        return EPOCH + self.t


def _tracker(clock: FakeClock, **kw: object) -> ProgressTracker:
    tracker = ProgressTracker("20261201T152000Z-1a2b", clock=clock, wall=clock.wall, **kw)
    tracker.start(total=100, skipped=40)
    tracker.submitted(10)
    return tracker


def _fail(tracker: ProgressTracker, pid: str, stage: str = "segment") -> None:
    row = {"participant_id": pid, "visit": "2_0", "code": "BAD", "message": f"{pid} broke"}
    tracker.finished(False, stage, row)


def _advance(tracker: ProgressTracker, clock: FakeClock) -> None:
    """At 60 s: 5 done, 1 failed -> 4 running, 54 remaining, 6/min, ETA 9 min."""
    clock.t = 60
    for _ in range(5):
        tracker.finished(True)
    _fail(tracker, "1000001")


def test_counts_rate_and_eta() -> None:
    clock = FakeClock()
    tracker = _tracker(clock)
    assert tracker.rate_per_min is None and tracker.eta_seconds is None  # no time yet
    _advance(tracker, clock)
    assert tracker.counts == ProgressCounts(
        total=100, done=5, failed=1, skipped=40, running=4, started_at=EPOCH
    )
    assert tracker.counts.remaining == 54
    assert tracker.rate_per_min == pytest.approx(6.0)
    assert tracker.eta_seconds == pytest.approx(540.0)
    clock.t = 60 + 300  # the six completions leave the 5-minute window
    assert tracker.rate_per_min == 0 and tracker.eta_seconds is None
    tracker.finished(True)
    assert tracker.rate_per_min == pytest.approx(0.2)  # 1 in 300 s
    assert tracker.eta_seconds == pytest.approx(53 * 300.0)


def test_failures_by_stage_and_the_last_ten_rows() -> None:
    tracker = _tracker(FakeClock())
    for i in range(12):
        _fail(tracker, f"10000{i:02d}", "measure" if i % 3 else "ingest")
    tracker.finished(False, None, {"participant_id": "x", "visit": "2_0", "stage": "write"})
    assert tracker.failures_by_stage == {"ingest": 4, "measure": 8, "write": 1}
    rows = tracker.snapshot()["latest_failures"]
    assert len(rows) == 10 and rows[0]["participant_id"] == "1000003"
    assert rows[-1] == {
        "participant_id": "x",
        "visit": "2_0",
        "stage": "write",
        "code": None,
        "message": None,
    }


def test_snapshot_is_json_ready_with_the_extra_fields() -> None:
    clock = FakeClock()
    plan = {"to_segment": 1204, "to_measure": 3511, "up_to_date": 95285}
    tracker = _tracker(clock, extra={"plan": plan, "pid": 7, "host": "h", "done": "clash"})
    _advance(tracker, clock)
    snap = tracker.snapshot()
    assert json.loads(json.dumps(snap)) == snap
    assert snap["plan"] == plan and (snap["pid"], snap["host"]) == (7, "h")
    assert snap["run_id"] == "20261201T152000Z-1a2b" and snap["state"] == "running"
    assert (snap["started_at"], snap["updated_at"]) == (
        "2026-12-01T15:20:00Z",
        "2026-12-01T15:21:00Z",
    )
    assert snap["finished_at"] is None
    expected = {"done": 5, "failed": 1, "skipped": 40, "running": 4, "remaining": 54}
    assert {k: snap[k] for k in expected} == expected
    assert (snap["rate_per_min"], snap["eta_seconds"]) == (6.0, 540)
    assert snap["failures_by_stage"] == {"segment": 1}
    tracker.close(ok=False)
    snap = tracker.snapshot()
    assert snap["state"] == "failed" and snap["finished_at"] == "2026-12-01T15:21:00Z"
    assert snap["eta_seconds"] is None and snap["running"] == 0


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "?"),
        (-1, "?"),
        (0, "0s"),
        (45, "45s"),
        (185, "3m05s"),
        (62520, "17h22m"),
        (3 * 86400 + 4 * 3600 + 59, "3d04h"),
    ],
)
def test_format_duration(seconds: float | None, text: str) -> None:
    assert format_duration(seconds) == text


def test_plain_lines_at_the_interval_off_a_terminal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    tracker = _tracker(clock)
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=200)
    log = logging.getLogger("test.progress")
    with caplog.at_level(logging.INFO, logger="test.progress"):
        with ProgressReporter(tracker, console=console, interval_s=60, log=log, clock=clock) as rep:
            clock.t = 30
            rep.refresh()
            assert out.getvalue() == ""
            _advance(tracker, clock)
            rep.refresh()
            clock.t = 100
            rep.refresh()
        lines = out.getvalue().splitlines()
    assert lines == [
        "progress 45/100 done, 1 failed, 4 running, 6.0/min, ETA 9m00s",
        "finished 45/100 done, 1 failed, 0 running, 3.6/min, took 1m40s",
    ]
    assert [r.getMessage() for r in caplog.records] == lines


def test_a_bar_on_a_terminal() -> None:
    clock = FakeClock()
    tracker = _tracker(clock)
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=160)
    with ProgressReporter(tracker, console=console, interval_s=60, clock=clock) as rep:
        _advance(tracker, clock)
        rep.refresh()
    text = out.getvalue()
    assert "45/100 done" in text and "1 failed" in text and "progress 45" not in text


def test_status_json_throttled_then_finished(tmp_path: Path) -> None:
    clock = FakeClock()
    tracker = _tracker(clock)
    path = tmp_path / "runs" / "r" / "status.json"
    console = Console(file=io.StringIO(), force_terminal=False)
    with ProgressReporter(
        tracker, console=console, interval_s=600, status_path=path, clock=clock
    ) as rep:
        assert json.loads(path.read_text())["done"] == 0  # written on entry
        clock.t = 3
        tracker.finished(True)
        rep.refresh()
        assert json.loads(path.read_text())["done"] == 0  # under 5 s: not yet
        clock.t = 6
        rep.refresh()
        assert json.loads(path.read_text())["done"] == 1
    final = json.loads(path.read_text())
    assert final["state"] == "finished" and final["finished_at"]
    assert [p.name for p in path.parent.iterdir()] == ["status.json"]


def test_status_json_says_failed_when_the_block_raises(tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    tracker = _tracker(FakeClock())
    console = Console(file=io.StringIO(), force_terminal=False)
    reporter = ProgressReporter(tracker, console=console, interval_s=60, status_path=path)
    with pytest.raises(RuntimeError), reporter:
        raise RuntimeError("boom")
    assert json.loads(path.read_text())["state"] == "failed"


def test_write_status_is_atomic(tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    write_status(path, {"state": "running"})
    broken: dict = {}
    broken["self"] = broken  # json.dumps raises half way
    with pytest.raises(ValueError):
        write_status(path, broken)
    assert json.loads(path.read_text()) == {"state": "running"}
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]


def test_progress_line_of_an_unknown_rate() -> None:
    snap = {
        "state": "running",
        "done": 0,
        "skipped": 0,
        "total": 5,
        "failed": 0,
        "running": 2,
        "rate_per_min": None,
        "eta_seconds": None,
    }
    assert progress_line(snap) == "progress 0/5 done, 0 failed, 2 running, ?/min, ETA ?"
