"""The end of every run: each input discovery saw is in the store exactly once.

::

    result = check_accounting(store, keys, job_plan.items, run_id=run_id)
    if not result.ok:
        raise AccountingError(result)  # ACCOUNTING: result.message() names the inputs

Under the job's keys (cohort, ``model_key``, ``measure_key``), for every input of the plan
(its slot, `mrcohort.jobs.ledger.plan`):

* an input this run worked on has exactly one ``ledger`` row of this run (and no ledger row
  of this run names an input the plan does not hold);
* its latest attempt ``ok``: metric rows for its participant-visit (``organ_metrics``,
  ``vessel_metrics``, ``qc``), no key among them twice, and no ``failures`` row of its slot;
* its latest attempt ``failed``: exactly one ``failures`` row of its slot, and no metric rows
  when the slot names a participant-visit.

Read from the store, not from what the run believes it wrote: a flush that overwrote an
earlier one (a bookkeeping bug) shows up here. One DuckDB query per table reads only key
columns of the job's partition (no file per participant); metric keys are compared one by
one only for participant-visits whose rows look doubled. About 1.5 s for 100,000
participant-visits (8.7 million metric rows) on 2 cores.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from mrcohort.errors import MrcohortError
from mrcohort.jobs.ledger import Action, Keys, WorkItem

__all__ = ["Accounting", "AccountingError", "check_accounting"]

#: Tables holding an ``ok`` participant-visit's rows (one per sequence x label each).
METRIC_TABLES: tuple[str, ...] = ("organ_metrics", "vessel_metrics", "qc")
#: Unaccounted inputs a message names (the status file keeps `STATUS_SLOTS`).
MESSAGE_SLOTS = 3
STATUS_SLOTS = 20


@dataclass(frozen=True)
class Accounting:
    """What :func:`check_accounting` found.

    Attributes
    ----------
    n_inputs
        Inputs discovery saw (the plan's items, skipped ones included).
    missing
        slot -> why it is not in the store (no ledger row of this run, no rows).
    duplicated
        slot -> why it is in the store more than once (or as metrics and a failure).
    """

    n_inputs: int
    missing: Mapping[str, str] = field(default_factory=dict)
    duplicated: Mapping[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.duplicated

    def message(self) -> str:
        """One line: counts, then the first few slots of each kind with the reason."""
        if self.ok:
            return f"all {self.n_inputs:,} inputs are in the store exactly once"
        parts = []
        for what, slots in (("missing", self.missing), ("duplicated", self.duplicated)):
            if slots:
                first = sorted(slots)[:MESSAGE_SLOTS]
                named = "; ".join(f"{s}: {slots[s]}" for s in first)
                more = f" (+{len(slots) - len(first):,} more)" if len(slots) > len(first) else ""
                parts.append(f"{len(slots):,} {what} ({named}{more})")
        return f"of {self.n_inputs:,} inputs discovery saw, {' and '.join(parts)} in the store"

    def as_status(self) -> dict[str, object]:
        """The JSON-ready summary kept in the run's status.json (``accounting``)."""
        return {
            "ok": self.ok,
            "inputs": self.n_inputs,
            "n_missing": len(self.missing),
            "n_duplicated": len(self.duplicated),
            "missing": {s: self.missing[s] for s in sorted(self.missing)[:STATUS_SLOTS]},
            "duplicated": {s: self.duplicated[s] for s in sorted(self.duplicated)[:STATUS_SLOTS]},
        }


class AccountingError(MrcohortError):
    """``ACCOUNTING``: an input discovery saw is not in the store exactly once.

    ``accounting`` is what the check found; ``summary``, raised by
    `mrcohort.jobs.run.run_job`, the run's ``RunSummary`` (what it did and committed).
    """

    def __init__(
        self, accounting: Accounting, *, where: str = "", summary: object | None = None
    ) -> None:
        hint = f"; details in {where}" if where else ""
        super().__init__(
            "ACCOUNTING",
            f"{accounting.message()}{hint} (a bug: please report it; "
            "`mrcohort run --force` recomputes and rewrites every input)",
            stage="run",
        )
        self.accounting = accounting
        self.summary = summary


@dataclass(frozen=True)
class _Latest:
    outcome: str
    n_this_run: int


def _source(store: Path, table: str, keys: Keys, *, filename: bool = False) -> str | None:
    """``read_parquet(...)`` of the job's partition of ``table`` (with a ``filename`` column:
    the file of each row), None when it has no file."""
    folder = Path(store, table, f"cohort={keys.cohort}", f"model_key={keys.model_key}")
    if not folder.is_dir() or not any(folder.glob("*.parquet")):
        return None
    glob = (folder / "*.parquet").as_posix().replace("'", "''")
    extra = ", filename = true" if filename else ""
    return f"read_parquet('{glob}', hive_partitioning = false, union_by_name = true{extra})"


def _ledger(con: duckdb.DuckDBPyConnection, store: Path, keys: Keys, run_id: str) -> dict:
    src = _source(store, "ledger", keys)
    if src is None:
        return {}
    rows = con.execute(
        f"SELECT slot, arg_max(outcome, computed_at), count(*) FILTER (WHERE run_id = ?) "
        f"FROM {src} WHERE measure_key = ? GROUP BY slot",
        [run_id, keys.measure_key],
    ).fetchall()
    return {slot: _Latest(outcome, n) for slot, outcome, n in rows}


def _failures(con: duckdb.DuckDBPyConnection, store: Path, keys: Keys) -> dict[str, int]:
    """slot -> failures rows (``<slot>|<sequence>`` rows under their own name)."""
    src = _source(store, "failures", keys)
    if src is None:
        return {}
    rows = con.execute(
        f"SELECT slot, count(*) FROM {src} WHERE measure_key = ? GROUP BY slot",
        [keys.measure_key],
    ).fetchall()
    return dict(rows)


def _metrics(
    con: duckdb.DuckDBPyConnection, store: Path, keys: Keys
) -> dict[tuple[str, str], tuple[int, int]]:
    """(participant_id, visit) -> (metric rows, rows whose key another row repeats).

    One cheap pass per table: the count, and whether the rows come from more than one
    attempt (``computed_at``, ``run_id``) or file (one flush writes an input's rows into one
    file: a batch written twice is in two). Keys are compared one by one only for the
    participant-visits that pass finds odd, or whose row count is unlike the table's usual.
    """
    out: dict[tuple[str, str], tuple[int, int]] = {}
    for table in METRIC_TABLES:
        src = _source(store, table, keys, filename=True)
        if src is None:
            continue
        rows = con.execute(
            f"SELECT participant_id, visit, count(*), min(computed_at) < max(computed_at) "
            f"OR min(run_id) < max(run_id) OR min(filename) < max(filename) "
            f"FROM {src} WHERE measure_key = ? GROUP BY participant_id, visit",
            [keys.measure_key],
        ).fetchall()
        usual = Counter(n for _, _, n, _ in rows).most_common(1)[0][0] if rows else 0
        odd = [(pid, visit) for pid, visit, n, mixed in rows if mixed or n != usual]
        repeated = _repeated_keys(con, src, keys, odd) if odd else {}
        for pid, visit, n, _ in rows:
            had, had_repeated = out.get((pid, visit), (0, 0))
            out[(pid, visit)] = (had + n, had_repeated + repeated.get((pid, visit), 0))
    return out


def _repeated_keys(
    con: duckdb.DuckDBPyConnection, src: str, keys: Keys, visits: list[tuple[str, str]]
) -> dict[tuple[str, str], int]:
    """(participant_id, visit) -> rows whose (sequence, label_id) another of its rows has."""
    con.register("_odd", pa.table({"pid": [p for p, _ in visits], "v": [v for _, v in visits]}))
    try:
        rows = con.execute(
            f"SELECT m.participant_id, m.visit, "
            f"count(*) - count(DISTINCT (m.sequence, m.label_id)) "
            f"FROM {src} AS m JOIN _odd ON m.participant_id = _odd.pid AND m.visit = _odd.v "
            f"WHERE m.measure_key = ? GROUP BY m.participant_id, m.visit",
            [keys.measure_key],
        ).fetchall()
    finally:
        con.unregister("_odd")
    return {(pid, visit): n for pid, visit, n in rows if n}


def _visit_of(item: WorkItem) -> tuple[str, str] | None:
    """The participant-visit whose metric rows belong to the slot, if it names one."""
    if item.pv is not None:
        return item.pv.participant_id, item.pv.visit
    rej = item.rejected
    if rej is not None and rej.visit and item.slot == f"{rej.participant_id}/{rej.visit}":
        return rej.participant_id, rej.visit
    return None


def check_accounting(
    store: Path, keys: Keys, items: Iterable[WorkItem], *, run_id: str
) -> Accounting:
    """Check that every input of a finished run is in the store exactly once (module
    docstring); read after the run's last flush, under its store lock.

    Parameters
    ----------
    store
        Store root.
    keys
        The job's cohort, ``model_key`` and ``measure_key``.
    items
        The run's plan: every input discovery saw, with its slot and action.
    run_id
        The run (its ledger rows are the ones it committed).
    """
    items = list(items)
    con = duckdb.connect()
    try:
        ledger = _ledger(con, store, keys, run_id)
        failures = _failures(con, store, keys)
        metrics = _metrics(con, store, keys)
    finally:
        con.close()
    missing: dict[str, str] = {}
    duplicated: dict[str, str] = {}
    planned = {item.slot for item in items}
    for slot, latest in ledger.items():
        if latest.n_this_run and slot not in planned:
            duplicated[slot] = "a ledger row of this run for an input discovery did not see"
    per_sequence: dict[str, int] = {}
    for slot, n in failures.items():
        if "|" in slot and n > 1:
            per_sequence[slot.split("|", 1)[0]] = n
    for item in items:
        slot = item.slot
        latest = ledger.get(slot)
        worked = item.action is not Action.SKIP
        n_run = latest.n_this_run if latest is not None else 0
        if latest is None or (worked and n_run == 0):
            missing[slot] = "no ledger row of this run" if worked else "no ledger row"
            continue
        if worked and n_run > 1:
            duplicated[slot] = f"{n_run} ledger rows of this run"
        visit = _visit_of(item)
        n_rows, n_repeated = metrics.get(visit, (0, 0)) if visit else (0, 0)
        n_failed = failures.get(slot, 0)
        if latest.outcome == "ok":
            if visit is not None and n_rows == 0:
                missing[slot] = "the ledger says ok, but no metric rows"
            if n_repeated:
                duplicated[slot] = f"{n_repeated} metric rows repeat a key"
            if n_failed:
                duplicated[slot] = "the ledger says ok, but it has a failures row"
        else:
            if n_failed == 0:
                missing[slot] = "the ledger says failed, but no failures row"
            elif n_failed > 1:
                duplicated[slot] = f"{n_failed} failures rows"
            if n_rows:
                duplicated[slot] = "the ledger says failed, but it has metric rows"
        if slot in per_sequence:
            duplicated[slot] = f"{per_sequence[slot]} failures rows for one sequence"
    return Accounting(len(items), missing, duplicated)
