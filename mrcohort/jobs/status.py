"""The state of a store's latest run, for ``mrcohort status``: its ``status.json``
(:func:`read_status`), checked against the store lock, and as text (:func:`format_status`).

Runs live in ``<store>/runs/<run_id>/`` (run ids such as ``20261201T154500Z-1a2b`` sort by
time). A status that says ``running`` while no live process holds the store's lock for that
run belongs to a run that died (killed, node lost): it is reported as ``interrupted``.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Mapping
from pathlib import Path

from mrcohort.errors import MrcohortError
from mrcohort.jobs import lock
from mrcohort.jobs.progress import format_duration, format_rate

__all__ = ["STATUS_NAME", "format_status", "is_live", "latest_run", "read_status"]

#: The status file's name inside a run folder.
STATUS_NAME = "status.json"
#: The plan's keys and how :func:`format_status` words them.
_PLAN = (
    ("to_segment", "to segment"),
    ("to_measure", "to measure only"),
    ("up_to_date", "up to date"),
)


def latest_run(store: Path) -> Path | None:
    """The newest run folder (by run id) of ``store`` that has a status.json, or None."""
    runs = Path(store) / "runs"
    if not runs.is_dir():
        return None
    found = sorted(d for d in runs.iterdir() if (d / STATUS_NAME).is_file())
    return found[-1] if found else None


def is_live(status: Mapping[str, object], holder: Mapping[str, object] | None) -> bool:
    """Whether the store lock's ``holder`` is the process of the run in ``status``: same
    run id when both have one, else same pid and host."""
    if holder is None:
        return False
    if holder.get("run_id") and status.get("run_id"):
        return holder["run_id"] == status["run_id"]
    return (
        status.get("pid") is not None
        and holder.get("pid") == status.get("pid")
        and holder.get("host") == status.get("host")
    )


def read_status(store: Path) -> dict | None:
    """The latest run's status.json plus ``live`` (its process holds the store lock now),
    ``run_dir`` and, when another process holds the lock, ``holder``; None without runs.

    A ``running`` status that is not live gets state ``interrupted``.
    """
    run_dir = latest_run(store)
    if run_dir is None:
        return None
    path = run_dir / STATUS_NAME
    try:
        status = json.loads(path.read_text())
    except ValueError as exc:
        raise MrcohortError("BAD_STATUS", f"{path} is not valid JSON: {exc}", stage="run") from exc
    if not isinstance(status, dict):
        raise MrcohortError("BAD_STATUS", f"{path} does not hold a JSON object", stage="run")
    holder = lock.holder(Path(store))
    status["live"] = is_live(status, holder)
    status["run_dir"] = str(run_dir)
    status.setdefault("run_id", run_dir.name)
    if status.get("state") == "running" and not status["live"]:
        status["state"] = "interrupted"
    if holder is not None and not status["live"]:
        status["holder"] = holder
    return status


def _n(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def _epoch(iso: object) -> float | None:
    if not isinstance(iso, str):
        return None
    try:
        return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def plan_line(plan: Mapping[str, object]) -> str:
    """``1,204 to segment, 3,511 to measure only, 95,285 up to date`` (keys present only)."""
    return ", ".join(f"{_n(plan[key])} {words}" for key, words in _PLAN if key in plan)


def failure_line(row: Mapping[str, object]) -> str:
    """``1000101/2_0 [ingest] NOT_A_ZIP: message``."""
    who = f"{row.get('participant_id')}/{row.get('visit')}"
    return f"{who} [{row.get('stage')}] {row.get('code')}: {row.get('message')}"


def _state_line(status: Mapping[str, object]) -> str:
    state = status.get("state", "?")
    line = f"run {status.get('run_id')}: {state}"
    if "pid" in status:
        line += f" (pid {status['pid']} on host {status.get('host', '?')})"
    if state == "interrupted":
        line += "; its process is gone: run it again to resume"
    return line


def _times_line(status: Mapping[str, object], now: float) -> str:
    line = f"started {status.get('started_at')}"
    if status.get("finished_at"):
        start, end = _epoch(status.get("started_at")), _epoch(status["finished_at"])
        took = format_duration(end - start) if start is not None and end is not None else "?"
        return f"{line}, finished {status['finished_at']} (took {took})"
    updated = _epoch(status.get("updated_at"))
    ago = f" ({format_duration(now - updated)} ago)" if updated is not None else ""
    return f"{line}, updated {status.get('updated_at')}{ago}"


def _counts_line(status: Mapping[str, object]) -> str:
    parts = [
        f"{_n(status.get(key, 0))} {key}"
        for key in ("done", "failed", "skipped", "running", "remaining")
    ]
    return f"{', '.join(parts)} of {_n(status.get('total', 0))}"


def format_status(status: Mapping[str, object], *, now: float | None = None) -> str:
    """A run's status (as :func:`read_status` returns it) as lines for a person.

    Run id and state, start / update (or finish) times, the plan, the counts, the rate and
    ETA while running, failures by stage, the latest failures (one line each), inputs the
    end-of-run accounting found missing or doubled in the store and, when another process
    holds the store, who.
    """
    now = time.time() if now is None else now
    lines = [_state_line(status), _times_line(status, now)]
    if isinstance(status.get("plan"), Mapping) and status["plan"]:
        lines.append(f"plan: {plan_line(status['plan'])}")
    lines.append(_counts_line(status))
    if status.get("state") == "running":
        eta = format_duration(status.get("eta_seconds"))
        lines.append(f"rate: {format_rate(status.get('rate_per_min'))}, ETA {eta}")
    by_stage = status.get("failures_by_stage") or {}
    if by_stage:
        parts = ", ".join(f"{stage} {_n(n)}" for stage, n in by_stage.items())
        lines.append(f"failures by stage: {parts}")
    latest = status.get("latest_failures") or []
    if latest:
        lines.append(f"latest failures ({len(latest)}):")
        lines.extend(f"  {failure_line(row)}" for row in latest)
    lines += _accounting_lines(status.get("accounting"))
    if status.get("holder") is not None:
        lines.append(f"the store is now in use by {lock.holder_summary(status['holder'])}")
    return "\n".join(lines)


def _accounting_lines(acc: object) -> list[str]:
    """The end-of-run check (`mrcohort.jobs.accounting`) when it found inputs that are not
    in the store exactly once: counts, then one line per input the status names."""
    if not isinstance(acc, Mapping) or acc.get("ok", True):
        return []
    lines = [
        f"ACCOUNTING: {_n(acc.get('n_missing', 0))} inputs missing from the store, "
        f"{_n(acc.get('n_duplicated', 0))} duplicated (of {_n(acc.get('inputs', 0))})"
    ]
    for what in ("missing", "duplicated"):
        named = acc.get(what) or {}
        if isinstance(named, Mapping):
            lines.extend(f"  {what} {slot}: {why}" for slot, why in named.items())
    return lines
