"""Progress of a long run: the counts and rate (:class:`ProgressTracker`), the run's
``status.json`` (:func:`write_status`) and what a person sees (:class:`ProgressReporter`: a
rich bar on a terminal, one plain line every few minutes in a batch job's output file).

Counts: ``total`` participant-visits in the run, of which ``skipped`` were up to date;
``done`` and ``failed`` completed in this run; ``running`` submitted and not yet back;
``remaining`` = total - skipped - done - failed.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn

from mrcohort.io.files import atomic_target
from mrcohort.jobs.lock import utc_iso

__all__ = [
    "ProgressCounts",
    "ProgressReporter",
    "ProgressTracker",
    "format_duration",
    "format_rate",
    "write_status",
]

#: Completions within this many seconds make the rate.
RATE_WINDOW_S = 300.0
#: Failure rows a snapshot keeps.
LATEST_FAILURES = 10
#: Fields of a failure row.
FAILURE_FIELDS = ("participant_id", "visit", "stage", "code", "message")


@dataclass(frozen=True)
class ProgressCounts:
    """The counts of a run at one moment (see the module docstring); ``started_at`` is epoch s."""

    total: int
    done: int
    failed: int
    skipped: int
    running: int
    started_at: float
    finished: bool = False

    @property
    def remaining(self) -> int:
        """Participant-visits neither skipped nor completed yet (running ones included)."""
        return max(0, self.total - self.skipped - self.done - self.failed)


def format_duration(seconds: float | None) -> str:
    """A short duration: ``45s``, ``3m05s``, ``17h22m``, ``2d05h``; ``?`` when unknown."""
    if seconds is None or seconds < 0 or seconds != seconds:
        return "?"
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def format_rate(rate_per_min: float | None) -> str:
    """``95.2/min``, or ``?/min`` when unknown."""
    return "?/min" if rate_per_min is None else f"{rate_per_min:.1f}/min"


def _failure_row(stage: str | None, failure: Mapping | None) -> dict:
    failure = failure or {}
    row = {field: failure.get(field) for field in FAILURE_FIELDS}
    row["stage"] = stage or row["stage"] or "unknown"
    return row


class ProgressTracker:
    """Counts, failures and rate of one run (not thread-safe: the job loop owns it).

    Parameters
    ----------
    run_id
        The run's id, put in every snapshot.
    extra
        More JSON-ready fields for every snapshot (``plan``, ``host``, ``pid``...); the
        tracker's own fields win on a clash. :meth:`update` adds more later.
    clock
        Monotonic seconds, for the rate (tests pass a fake).
    wall
        Epoch seconds, for the timestamps.
    window_s
        The rate counts completions within this many seconds.
    """

    def __init__(
        self,
        run_id: str | None = None,
        *,
        extra: Mapping[str, object] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        window_s: float = RATE_WINDOW_S,
    ) -> None:
        self.run_id = run_id
        self.extra: dict[str, object] = dict(extra or {})
        self.clock = clock
        self.wall = wall
        self.window_s = window_s
        self.total = self.done = self.failed = self.skipped = self.running = 0
        self.started_at = wall()
        self.finished_at: float | None = None
        self.state = "running"
        self.failures_by_stage: Counter[str] = Counter()
        self.latest_failures: deque[dict] = deque(maxlen=LATEST_FAILURES)
        self._started_mono = clock()
        self._completions: deque[float] = deque()

    def start(self, total: int, skipped: int = 0) -> None:
        """The run begins: ``total`` participant-visits, ``skipped`` of them up to date."""
        self.total, self.skipped = total, skipped
        self.started_at = self.wall()
        self._started_mono = self.clock()

    def update(self, **fields: object) -> None:
        """Add or replace extra snapshot fields."""
        self.extra.update(fields)

    def submitted(self, n: int = 1) -> None:
        """``n`` participant-visits were handed to workers."""
        self.running += n

    def finished(
        self, ok: bool, stage: str | None = None, failure: Mapping[str, object] | None = None
    ) -> None:
        """One participant-visit came back: ``ok``, or failed in ``stage`` (``failure``: its
        failures row, with participant_id, visit, stage, code, message)."""
        self.running = max(0, self.running - 1)
        if ok:
            self.done += 1
        else:
            self.failed += 1
            row = _failure_row(stage, failure)
            self.failures_by_stage[row["stage"]] += 1
            self.latest_failures.append(row)
        self._completions.append(self.clock())

    def close(self, ok: bool = True) -> None:
        """The run ended: state ``finished`` (``ok``) or ``failed``."""
        self.state = "finished" if ok else "failed"
        self.finished_at = self.wall()
        self.running = 0

    @property
    def counts(self) -> ProgressCounts:
        """The counts now."""
        return ProgressCounts(
            total=self.total,
            done=self.done,
            failed=self.failed,
            skipped=self.skipped,
            running=self.running,
            started_at=self.started_at,
            finished=self.finished_at is not None,
        )

    @property
    def rate_per_min(self) -> float | None:
        """Completions (done or failed) per minute over the last ``window_s``; None before
        any time has passed."""
        now = self.clock()
        while self._completions and self._completions[0] <= now - self.window_s:
            self._completions.popleft()
        span = min(self.window_s, now - self._started_mono)
        if span <= 0:
            return None
        return len(self._completions) * 60.0 / span

    @property
    def eta_seconds(self) -> float | None:
        """Seconds until every remaining participant-visit is back at the current rate
        (0 when none remain, None when the rate is unknown or zero)."""
        remaining = self.counts.remaining
        if remaining == 0:
            return 0.0
        rate = self.rate_per_min
        return None if not rate else remaining * 60.0 / rate

    def snapshot(self) -> dict:
        """The run's state as a JSON-ready dict (what ``status.json`` holds)."""
        counts = self.counts
        rate = self.rate_per_min
        eta = None if self.finished_at is not None else self.eta_seconds
        own = {
            "run_id": self.run_id,
            "state": self.state,
            "started_at": utc_iso(self.started_at),
            "updated_at": utc_iso(self.wall()),
            "finished_at": None if self.finished_at is None else utc_iso(self.finished_at),
            "total": counts.total,
            "done": counts.done,
            "failed": counts.failed,
            "skipped": counts.skipped,
            "running": counts.running,
            "remaining": counts.remaining,
            "rate_per_min": None if rate is None else round(rate, 2),
            "eta_seconds": None if eta is None else round(eta),
            "failures_by_stage": dict(sorted(self.failures_by_stage.items())),
            "latest_failures": list(self.latest_failures),
        }
        return {**self.extra, **own}


def write_status(path: Path, snapshot: Mapping[str, object]) -> None:
    """Write ``snapshot`` as JSON to ``path`` atomically (readers never see half a file)."""
    with atomic_target(Path(path)) as tmp:
        tmp.write_text(json.dumps(snapshot, indent=2, default=str) + "\n")


def progress_line(snapshot: Mapping[str, object], elapsed_s: float | None = None) -> str:
    """One plain line: ``progress 1204/100000 done, 3 failed, 8 running, 95.2/min, ETA 17h22m``
    (done counts the skipped ones); a finished run says ``finished`` / ``failed`` and, given
    ``elapsed_s``, ``took 2d03h`` instead of the ETA."""
    state = snapshot["state"]
    head = "progress" if state == "running" else str(state)
    done = int(snapshot["done"]) + int(snapshot["skipped"])
    line = (
        f"{head} {done}/{snapshot['total']} done, {snapshot['failed']} failed, "
        f"{snapshot['running']} running, {format_rate(snapshot['rate_per_min'])}"
    )
    if state == "running":
        return f"{line}, ETA {format_duration(snapshot['eta_seconds'])}"
    return line if elapsed_s is None else f"{line}, took {format_duration(elapsed_s)}"


def _bar(console: Console) -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[done]}/{task.fields[of]} done"),
        TextColumn("[red]{task.fields[failed]} failed"),
        TextColumn("{task.fields[running]} running"),
        TextColumn("{task.fields[rate]}"),
        TextColumn("ETA {task.fields[eta]}"),
        console=console,
        refresh_per_second=2,
    )


class ProgressReporter:
    """Shows a :class:`ProgressTracker` while a ``with`` block runs; call :meth:`refresh`
    after each completion.

    On a terminal: a rich bar (done incl. skipped / total, failed, running, rate, ETA). Else
    (a batch job's output file): one plain :func:`progress_line` every ``interval_s`` and
    one at the end. ``log``, if given, gets that line every ``interval_s`` and at the end in
    both cases (the run's log.txt). ``status_path`` (status.json) is written on entry, at
    most every ``status_interval_s`` and on exit, with state ``finished``, or ``failed`` when
    the block raised.

    Parameters
    ----------
    tracker
        The run's counts.
    console
        Where the bar or the lines go.
    interval_s
        Seconds between plain lines.
    is_terminal
        Force bar (True) or lines (False); None: ``console.is_terminal``.
    log
        Logger for the plain lines.
    status_path
        The run's status.json.
    description
        The bar's label.
    status_interval_s
        Least seconds between status.json writes.
    clock
        Monotonic seconds (tests pass a fake).
    """

    def __init__(
        self,
        tracker: ProgressTracker,
        *,
        console: Console,
        interval_s: float,
        is_terminal: bool | None = None,
        log: logging.Logger | None = None,
        status_path: Path | None = None,
        description: str = "measuring",
        status_interval_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.tracker = tracker
        self.console = console
        self.interval_s = interval_s
        self.is_terminal = console.is_terminal if is_terminal is None else is_terminal
        self.log = log
        self.status_path = status_path
        self.description = description
        self.status_interval_s = status_interval_s
        self.clock = clock
        self._bar: Progress | None = None
        self._task: TaskID | None = None
        self._last_line = self._last_status = 0.0
        self._entered = 0.0

    def __enter__(self) -> ProgressReporter:
        self._entered = self._last_line = self.clock()
        if self.is_terminal:
            self._bar = _bar(self.console)
            self._task = self._bar.add_task(self.description, total=None, **self._fields({}))
            self._update_bar(self.tracker.snapshot())
            self._bar.start()
        self._write_status(self.tracker.snapshot())
        self.refresh()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.tracker.close(ok=exc_type is None)
        snap = self.tracker.snapshot()
        try:
            if self._bar is not None:
                self._update_bar(snap)
                self._bar.stop()
            line = progress_line(snap, elapsed_s=self.clock() - self._entered)
            if not self.is_terminal:
                self.console.print(line, markup=False, highlight=False)
            if self.log is not None:
                self.log.info(line)
        finally:
            self._write_status(snap)

    def refresh(self) -> None:
        """Update the bar, print a plain line when ``interval_s`` has passed, write
        status.json when ``status_interval_s`` has passed."""
        now = self.clock()
        snap = self.tracker.snapshot()
        if self._bar is not None:
            self._update_bar(snap)
        if now - self._last_line >= self.interval_s:
            self._last_line = now
            line = progress_line(snap)
            if not self.is_terminal:
                self.console.print(line, markup=False, highlight=False)
            if self.log is not None:
                self.log.info(line)
        if now - self._last_status >= self.status_interval_s:
            self._write_status(snap)

    @staticmethod
    def _fields(snap: Mapping[str, object]) -> dict[str, object]:
        return {
            "done": int(snap.get("done", 0)) + int(snap.get("skipped", 0)),
            "of": snap.get("total", 0),
            "failed": snap.get("failed", 0),
            "running": snap.get("running", 0),
            "rate": format_rate(snap.get("rate_per_min")),
            "eta": format_duration(snap.get("eta_seconds")),
        }

    def _update_bar(self, snap: Mapping[str, object]) -> None:
        assert self._bar is not None and self._task is not None
        total = int(snap["total"])
        completed = total - int(snap["remaining"])
        self._bar.update(self._task, total=total or None, completed=completed, **self._fields(snap))

    def _write_status(self, snap: Mapping[str, object]) -> None:
        if self.status_path is not None:
            self._last_status = self.clock()
            write_status(self.status_path, snap)
