"""Saving results as they land: flushes that are all-or-nothing across tables, and the
recovery that makes them so after a crash.

A flush writes the rows of a batch of inputs into every table at once, as files named after
the flush (``part-<flush_id>.parquet``), in this order:

1. a journal entry ``<store>/.mrcohort/journal/<flush_id>.json`` (what will be written, and
   which rows of earlier flushes the new rows supersede);
2. the data files (``scans``, ``organ_metrics``, ``vessel_metrics``, ``qc``, ``failures``);
3. the ``ledger`` file — the commit: from here on the flush counts as done;
4. the superseded rows of earlier flushes removed (their files rewritten atomically);
5. the journal entry deleted.

:func:`recover` runs at the start of every job (under the store lock): a journal entry whose
ledger file exists is finished (step 4 again; it is idempotent), one without is rolled back
(its data files deleted). Temp files of interrupted writes are deleted. So after any crash
and the next run, every row of the store is there exactly once.

``mrcohort compact`` later merges the files of consecutive flushes into one *compacted flush*
(:mod:`mrcohort.jobs.compact`) and renames the ledger's ``flush_id`` accordingly, so step 4
of later flushes finds the rows it supersedes; :func:`recover` finishes an interrupted
compaction first.

Hand-written: no library gives multi-file transactions over a folder of Parquet files
(Delta Lake / Iceberg would, at the cost of readers that understand them; ours read plain
Parquet with DuckDB, pandas or polars).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mrcohort.errors import MrcohortError
from mrcohort.faults import failpoint
from mrcohort.io.files import atomic_target, write_json_durably
from mrcohort.schemas.conform import table_from_rows
from mrcohort.schemas.rows import NO_MODEL_KEY
from mrcohort.schemas.store import STAGING_DIR, write_table

__all__ = ["DATA_TABLES", "Flusher", "StoreWriteError", "journal_dir", "recover"]

log = logging.getLogger(__name__)

#: Tables a flush writes before the ledger (their rows carry participant_id and visit).
DATA_TABLES: tuple[str, ...] = ("scans", "organ_metrics", "vessel_metrics", "qc", "failures")
#: Tables whose rows belong to the job's model (scans belong to no model).
_MODEL_TABLES = ("organ_metrics", "vessel_metrics", "qc", "failures")


def journal_dir(store: Path) -> Path:
    """Folder of the flush journal."""
    return Path(store, ".mrcohort", "journal")


def _partition_dir(store: Path, table: str, cohort: str, model_key: str) -> Path:
    return Path(store, table, f"cohort={cohort}", f"model_key={model_key}")


def _part(folder: Path, flush_id: str) -> Path:
    return folder / f"part-{flush_id}.parquet"


@dataclass
class Batch:
    """Rows waiting for the next flush."""

    tables: dict[str, list[dict[str, object]]] = field(
        default_factory=lambda: {name: [] for name in DATA_TABLES}
    )
    ledger: list[dict[str, object]] = field(default_factory=list)
    supersede: dict[str, set[str]] = field(default_factory=dict)
    """flush_id of an earlier flush -> slots whose model rows this batch replaces."""
    supersede_scans: dict[str, set[str]] = field(default_factory=dict)
    """flush_id -> slots whose scans rows this batch replaces."""

    def __len__(self) -> int:
        return len(self.ledger)


class Flusher:
    """Collects each input's rows and flushes every ``every_n`` inputs or ``every_s``
    seconds, whichever comes first.

    Parameters
    ----------
    store
        Store root.
    cohort, model_key
        Partition of the model tables (``scans`` go to ``model_key=none``).
    run_id
        Prefix of the flush ids (``<run_id>-<n>``).
    every_n, every_s
        Flush thresholds.
    clock
        Monotonic clock (seconds).
    """

    def __init__(
        self,
        store: Path,
        *,
        cohort: str,
        model_key: str,
        run_id: str,
        every_n: int,
        every_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store, self.cohort, self.model_key, self.run_id = store, cohort, model_key, run_id
        self.every_n, self.every_s, self.clock = every_n, every_s, clock
        self.batch = Batch()
        self.n_flushes = 0
        self.files: list[Path] = []
        self._since = clock()

    def add(
        self,
        tables: Mapping[str, list[dict[str, object]]],
        ledger_row: dict[str, object],
        *,
        replaces: Iterable[str] = (),
        replaces_scans: Iterable[str] = (),
    ) -> None:
        """Queue one input's rows; ``replaces`` (``replaces_scans``) are the earlier flushes
        whose rows of this slot (whose scans rows) these rows supersede."""
        unknown = set(tables) - set(DATA_TABLES)
        if unknown:
            raise ValueError(f"not data tables: {sorted(unknown)}")
        slot = str(ledger_row["slot"])
        replaces, replaces_scans = tuple(replaces), tuple(replaces_scans)
        # nothing can fail from here on: an input's rows are queued whole or not at all
        for name, rows in tables.items():
            self.batch.tables[name].extend(rows)
        self.batch.ledger.append(ledger_row)
        for fid in replaces:
            self.batch.supersede.setdefault(fid, set()).add(slot)
        for fid in replaces_scans:
            self.batch.supersede_scans.setdefault(fid, set()).add(slot)

    def due(self) -> bool:
        """A flush is due (enough inputs, or enough time since the last flush)."""
        n = len(self.batch)
        return n >= self.every_n or (n > 0 and self.clock() - self._since >= self.every_s)

    def flush(self) -> list[dict[str, object]]:
        """Write the queued rows (all tables, ledger last); return the ledger rows written."""
        self._since = self.clock()
        if not self.batch.ledger:
            return []
        batch, self.batch = self.batch, Batch()
        flush_id = f"{self.run_id}-{self.n_flushes:05d}"
        self.n_flushes += 1
        started = time.perf_counter()
        entry = _journal_entry(batch, flush_id, self.cohort, self.model_key)
        try:
            _write_journal(self.store, flush_id, entry)
        except OSError as exc:  # nothing of this flush written yet
            raise StoreWriteError(
                journal_dir(self.store) / f"{flush_id}.json", flush_id, exc
            ) from exc
        failpoint("flush.journaled")
        written: list[Path] = []
        try:
            for name in DATA_TABLES:
                if batch.tables[name]:
                    written.append(self._write(name, batch.tables[name], flush_id))
            seconds = (time.perf_counter() - started) / len(batch.ledger)
            for row in batch.ledger:
                row["flush_id"] = flush_id
                row["seconds_write"] = round(seconds, 4)
            failpoint("flush.data_written")
            written.append(self._write("ledger", batch.ledger, flush_id))
        except BaseException:  # disk full, Ctrl-C: nothing of this flush stays visible
            _roll_back(self.store, entry)
            raise
        failpoint("flush.committed")
        self.files.extend(written)
        try:
            _finish(self.store, entry)
        except OSError as exc:  # committed: the next run's recovery finishes the clean-up
            path = Path(exc.filename) if exc.filename else journal_dir(self.store)
            raise StoreWriteError(path, flush_id, exc, committed=True) from exc
        return batch.ledger

    def _write(self, name: str, rows: list[dict[str, object]], flush_id: str) -> Path:
        model_key = NO_MODEL_KEY if name == "scans" else self.model_key
        try:
            return write_table(
                self.store,
                name,
                table_from_rows(name, rows),
                partition={"cohort": self.cohort, "model_key": model_key},
                file_key=flush_id,
            )
        except OSError as exc:  # disk full, quota, permissions: the path, then roll back
            dest = _part(_partition_dir(self.store, name, self.cohort, model_key), flush_id)
            raise StoreWriteError(dest, flush_id, exc) from exc


class StoreWriteError(MrcohortError):
    """A flush could not write one of its files (``STORE_WRITE_FAILED``); the flush is
    rolled back (`Flusher.flush`), so no table holds any of its rows."""

    def __init__(self, dest: Path, flush_id: str, exc: OSError, *, committed: bool = False) -> None:
        reason = exc.strerror or str(exc) or type(exc).__name__
        if committed:
            what = (
                f"Flush {flush_id} is committed; removing the earlier rows it replaces did not "
                "finish: free space or fix the store, then run again — its recovery finishes it"
            )
        else:
            what = (
                f"Flush {flush_id} was rolled back (no table holds any of its rows); free space "
                "or fix the store, then run again: the inputs of that flush and every later one "
                "are redone"
            )
        super().__init__(
            "STORE_WRITE_FAILED", f"could not write {dest}: {reason}. {what}", stage="write"
        )
        self.path = dest


def _journal_entry(batch: Batch, flush_id: str, cohort: str, model_key: str) -> dict:
    return {
        "flush_id": flush_id,
        "cohort": cohort,
        "model_key": model_key,
        "tables": [name for name in DATA_TABLES if batch.tables[name]],
        "supersede": {fid: sorted(s) for fid, s in batch.supersede.items()},
        "supersede_scans": {fid: sorted(s) for fid, s in batch.supersede_scans.items()},
    }


def _write_journal(store: Path, flush_id: str, entry: dict) -> None:
    """The journal entry, on disk (fsynced, file and folder) before any data file."""
    write_json_durably(journal_dir(store) / f"{flush_id}.json", entry)


def _roll_back(store: Path, entry: dict) -> None:
    """Delete the files of an uncommitted flush (ledger included), then its journal entry."""
    fid, cohort, model_key = entry["flush_id"], entry["cohort"], entry["model_key"]
    for name in [*entry["tables"], "ledger"]:
        key = NO_MODEL_KEY if name == "scans" else model_key
        _part(_partition_dir(store, name, cohort, key), fid).unlink(missing_ok=True)
    failpoint("flush.rolling_back")
    (journal_dir(store) / f"{fid}.json").unlink(missing_ok=True)


def _finish(store: Path, entry: dict) -> None:
    """Steps 4 and 5: remove superseded rows, then the journal entry."""
    cohort, model_key = entry["cohort"], entry["model_key"]
    for fid, slots in entry["supersede"].items():
        for name in _MODEL_TABLES:
            part = _part(_partition_dir(store, name, cohort, model_key), fid)
            _drop_slots(part, set(slots), store)
    for fid, slots in entry["supersede_scans"].items():
        part = _part(_partition_dir(store, "scans", cohort, NO_MODEL_KEY), fid)
        _drop_slots(part, set(slots), store)
    (journal_dir(store) / f"{entry['flush_id']}.json").unlink(missing_ok=True)


def _slot_column(table: pa.Table) -> pa.Array:
    """The input slot of every row: the ``slot`` column (failures; a per-sequence failure
    ``<slot>|<sequence>`` belongs to ``<slot>``), else ``participant_id/visit``."""
    if "slot" in table.column_names:
        slots = [s.split("|", 1)[0] for s in table.column("slot").to_pylist()]
        return pa.array(slots, pa.string())
    visit = pc.fill_null(table.column("visit"), "")
    return pc.binary_join_element_wise(table.column("participant_id"), visit, "/")


def _drop_slots(path: Path, slots: set[str], store: Path) -> None:
    """Rewrite one file without the rows of ``slots`` (deleted when nothing is left)."""
    if not path.is_file():
        return
    table = pq.read_table(path)
    keep = pc.invert(pc.is_in(_slot_column(table), value_set=pa.array(sorted(slots))))
    kept = table.filter(keep)
    if kept.num_rows == table.num_rows:
        return
    if kept.num_rows == 0:
        path.unlink(missing_ok=True)
        return
    with atomic_target(path, staging_dir=Path(store, STAGING_DIR)) as tmp:
        pq.write_table(kept, tmp, compression="zstd")


def recover(store: Path) -> list[str]:
    """Finish or roll back interrupted flushes and delete temp files; return what was done.

    Run under the store lock, before a job reads the ledger.
    """
    from mrcohort.jobs.compact import recover_compactions  # compact imports no flush code

    done: list[str] = recover_compactions(store)
    folder = journal_dir(store)
    entries = sorted(p for p in folder.glob("*.json") if not p.name.startswith("."))
    for path in entries if folder.is_dir() else []:
        fid = path.name.removesuffix(".json")
        try:
            entry = json.loads(path.read_text())
        except ValueError:  # an entry cut short by a crash: its flush never committed
            for part in Path(store).glob(f"*/cohort=*/model_key=*/part-{fid}.parquet"):
                part.unlink()
            path.unlink()
            done.append(f"rolled back flush {fid} (damaged journal entry)")
            continue
        cohort, model_key = entry["cohort"], entry["model_key"]
        if _part(_partition_dir(store, "ledger", cohort, model_key), fid).is_file():
            _finish(store, entry)
            done.append(f"finished flush {fid}")
            continue
        _roll_back(store, entry)
        done.append(f"rolled back flush {fid}")
    done += _remove_temp_files(store)
    return done


def _remove_temp_files(store: Path) -> list[str]:
    """Temp files of writes a crash interrupted (staging area, segmentations, journal)."""
    removed = []
    candidates = [
        *Path(store, STAGING_DIR).glob("*"),
        *Path(store, "segmentations").glob("*/.tmp-*"),
        *journal_dir(store).glob(".tmp-*"),
        *Path(store, "runs").glob("*/.tmp-*"),
        *Path(store).glob("*/cohort=*/model_key=*/.tmp-*"),
    ]
    for path in candidates:
        if path.is_file():
            path.unlink(missing_ok=True)
            removed.append(f"removed temp file {path.relative_to(store)}")
    return removed
