"""Checking a store's files against its ledger (``mrcohort verify``), and the repair after
which the next run redoes whatever a damaged file lost.

A store lives for years and moves between filesystems; a copy cut short, a bad disk or a
hand edit damages files no job reads again (a finished input is never re-read). The check:

- every Parquet file of every table is read whole (a cut footer, a corrupt page);
- every stored segmentation the ledger names is there and hashes to the recorded sha256
  (threads: hashing is I/O and C code);
- every QC picture a ``qc`` row names is there;
- no flush or compaction was left interrupted (the next run or ``compact`` recovers those).

The repair (under the store lock): interrupted flushes and compactions are recovered; a flush
with a damaged table file is taken back whole — a journal entry, then its ledger file, then its
data files (:func:`mrcohort.jobs.flush.recover` finishes that after a crash) — so its inputs are
planned again by the next run; a damaged segmentation is deleted and each input measured from
it gets a ledger row ``SEGMENTATION_LOST`` (retryable, its own file), so the next run segments
that input again and measures it — that input only; its current rows stay until then. Missing
QC pictures are reported only (``--force`` redraws them).
"""

from __future__ import annotations

import concurrent.futures as cf
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from mrcohort.io.files import sha256_file, write_json_durably
from mrcohort.jobs.flush import DATA_TABLES, journal_dir, recover
from mrcohort.jobs.participant import segmentation_path
from mrcohort.jobs.records import new_run_id
from mrcohort.schemas.conform import table_from_rows
from mrcohort.schemas.rows import NO_MODEL_KEY, utc_now
from mrcohort.schemas.store import write_table
from mrcohort.schemas.tables import SCHEMAS

__all__ = ["Problem", "Verification", "repair_store", "verify_store"]

#: Tables whose files belong to a flush (``part-<flush_id>.parquet``).
_FLUSH_TABLES = (*DATA_TABLES, "ledger")


@dataclass(frozen=True)
class Problem:
    """One damaged or missing file. ``kind``: ``table_file``, ``segmentation``,
    ``qc_picture`` or ``interrupted``; ``path`` relative to the store."""

    kind: str
    path: str
    detail: str
    flush_id: str | None = None


@dataclass
class Verification:
    """What :func:`verify_store` checked and found."""

    table_files: int = 0
    segmentations: int = 0
    qc_pictures: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _flush_of(path: Path) -> str:
    return path.name.removeprefix("part-").removesuffix(".parquet")


def _read_whole(path: Path) -> str | None:
    """None when the Parquet file reads whole, else why not."""
    try:
        pq.ParquetFile(path).read()
    except (OSError, pa.ArrowException, ValueError) as exc:
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return None


def _parquet_list(files: Iterable[Path]) -> str:
    """DuckDB's list literal of ``files`` (for ``read_parquet``)."""
    return "[" + ", ".join("'" + p.as_posix().replace("'", "''") + "'" for p in files) + "]"


def _table_files(store: Path) -> list[tuple[str, Path]]:
    return [
        (name, path)
        for name in SCHEMAS
        for path in sorted(Path(store, name).rglob("part-*.parquet"))
    ]


def _check_tables(store: Path, result: Verification, pool: cf.Executor) -> dict[str, list[Path]]:
    """Read every table file; return those that read whole, by table."""
    files = _table_files(store)
    good: dict[str, list[Path]] = {name: [] for name in SCHEMAS}
    for (name, path), why in zip(files, pool.map(lambda f: _read_whole(f[1]), files), strict=True):
        result.table_files += 1
        if why is None:
            good[name].append(path)
            continue
        fid = _flush_of(path) if name in _FLUSH_TABLES else None
        result.problems.append(
            Problem("table_file", path.relative_to(store).as_posix(), why, flush_id=fid)
        )
    return good


def _recorded_segmentations(ledger_files: list[Path]) -> list[tuple[str, str, str]]:
    """(model_key, input_sha256, segmentation_sha256): the latest hash recorded for each
    stored segmentation."""
    if not ledger_files:
        return []
    with_seg = "FILTER (WHERE segmentation_sha256 IS NOT NULL)"
    sql = (
        f"SELECT model_key, input_sha256, arg_max(segmentation_sha256, computed_at) {with_seg} "
        f"AS sha, max(computed_at) {with_seg} AS written, "
        "max(computed_at) FILTER (WHERE code = 'SEGMENTATION_LOST') AS lost "
        f"FROM read_parquet({_parquet_list(ledger_files)}, hive_partitioning = true, "
        "union_by_name = true) WHERE input_sha256 IS NOT NULL GROUP BY model_key, input_sha256"
    )
    keep = "sha IS NOT NULL AND (lost IS NULL OR lost < written)"  # lost: a repair removed it
    with duckdb.connect() as con:
        rows = con.execute(
            f"SELECT model_key, input_sha256, sha FROM ({sql}) WHERE {keep} ORDER BY 1, 2"
        ).fetchall()
    return [(str(m), str(i), str(s)) for m, i, s in rows]


def _segmentation_problem(store: Path, model_key: str, input_sha: str, sha: str) -> Problem | None:
    path = segmentation_path(store, model_key, input_sha)
    rel = path.relative_to(store).as_posix()
    try:
        got = sha256_file(path)
    except FileNotFoundError:
        return Problem("segmentation", rel, "missing")
    except OSError as exc:
        return Problem("segmentation", rel, f"unreadable: {exc.strerror or exc}")
    return None if got == sha else Problem("segmentation", rel, "sha256 differs from the ledger's")


def _check_pictures(store: Path, result: Verification, qc_files: list[Path]) -> None:
    """Every picture the readable ``qc_files`` name is there."""
    if not qc_files:
        return
    sql = (
        f"SELECT DISTINCT picture_path FROM read_parquet({_parquet_list(qc_files)}, "
        "union_by_name = true) WHERE picture_path IS NOT NULL ORDER BY 1"
    )
    with duckdb.connect() as con:
        try:
            paths = [str(r[0]) for r in con.execute(sql).fetchall()]
        except duckdb.BinderException:  # files older than the column
            return
    for rel in paths:
        result.qc_pictures += 1
        if not Path(store, rel).is_file():
            result.problems.append(Problem("qc_picture", rel, "missing"))


def _check_interrupted(store: Path, result: Verification) -> None:
    leftovers = [
        *journal_dir(store).glob("*.json"),
        *Path(store, ".mrcohort", "compact").glob("*.json"),
    ]
    for path in sorted(leftovers):
        result.problems.append(
            Problem(
                "interrupted",
                path.relative_to(store).as_posix(),
                "an interrupted flush or compaction: the next run (or compact, or verify "
                "--repair) finishes or rolls it back",
            )
        )


def verify_store(
    store: Path,
    *,
    segmentations: bool = True,
    threads: int = 4,
    on_segmentation: Callable[[], None] = lambda: None,
) -> Verification:
    """Check every file of ``store`` (see the module docstring); ``segmentations=False`` skips
    the hashing (the longest part: every stored segmentation is read)."""
    result = Verification()
    with cf.ThreadPoolExecutor(max(1, threads)) as pool:
        readable = _check_tables(store, result, pool)
        if segmentations:
            recorded = _recorded_segmentations(readable["ledger"])

            def check(entry: tuple[str, str, str]) -> Problem | None:
                problem = _segmentation_problem(store, *entry)
                on_segmentation()
                return problem

            for problem in pool.map(check, recorded):
                result.segmentations += 1
                if problem is not None:
                    result.problems.append(problem)
    _check_pictures(store, result, readable["qc"])
    _check_interrupted(store, result)
    return result


def _uncommit_flush(store: Path, flush_id: str) -> str:
    """Make flush ``flush_id`` an uncommitted one (a journal entry naming its files, its ledger
    file removed): the recovery after it deletes its data files and the entry."""
    ledgers = list(Path(store, "ledger").glob(f"cohort=*/model_key=*/part-{flush_id}.parquet"))
    data = list(Path(store).glob(f"*/cohort=*/model_key=*/part-{flush_id}.parquet"))
    if ledgers:
        cohort = ledgers[0].parent.parent.name.removeprefix("cohort=")
        model_key = ledgers[0].parent.name.removeprefix("model_key=")
    else:  # a ledger file already gone: any data file names the partition
        parts = [p for p in data if p.parent.name != f"model_key={NO_MODEL_KEY}"] or data
        cohort = parts[0].parent.parent.name.removeprefix("cohort=")
        model_key = parts[0].parent.name.removeprefix("model_key=")
    tables = sorted({p.parent.parent.parent.name for p in data} & set(DATA_TABLES))
    entry = {
        "flush_id": flush_id, "cohort": cohort, "model_key": model_key, "tables": tables,
        "supersede": {}, "supersede_scans": {},
    }  # fmt: skip
    # the journal entry first: a crash from here on is rolled back by the next recovery
    write_json_durably(journal_dir(store) / f"{flush_id}.json", entry)
    for path in ledgers:
        path.unlink(missing_ok=True)
    return f"took back flush {flush_id} ({len(data)} files): its inputs are redone by the next run"


def _lost_segmentation_rows(store: Path, problems: list[Problem], run_id: str) -> list[dict]:
    """For each damaged segmentation: a ``SEGMENTATION_LOST`` copy of the latest ledger row of
    every slot and measurement whose latest attempt is ok on its input (read from the ledger
    files not found damaged)."""
    damaged = {p.path for p in problems if p.kind == "table_file"}
    files = [
        p
        for p in Path(store, "ledger").rglob("part-*.parquet")
        if p.relative_to(store).as_posix() not in damaged
    ]
    lost = [
        (Path(p.path).parent.name, Path(p.path).name.removesuffix(".nii.gz"))
        for p in problems
        if p.kind == "segmentation"
    ]
    if not files or not lost:
        return []
    keys = ", ".join(f"('{m}', '{s}')" for m, s in lost)  # hex digests: nothing to quote
    sql = (
        f"SELECT * FROM read_parquet({_parquet_list(files)}, hive_partitioning = true, "
        "union_by_name = true, hive_types_autocast = false) QUALIFY row_number() OVER "
        "(PARTITION BY model_key, slot, measure_key ORDER BY computed_at DESC) = 1"
    )
    with duckdb.connect() as con:
        latest = con.sql(
            f"SELECT * FROM ({sql}) WHERE outcome = 'ok' AND (model_key, input_sha256) IN "
            f"(SELECT * FROM (VALUES {keys}))"
        ).fetch_arrow_table()
    now = utc_now()
    return [
        {**row, "outcome": "failed", "stage": "verify", "code": "SEGMENTATION_LOST",
         "retryable": True, "segmentation_sha256": None, "action": "verify", "worker": None,
         "wrote_scans": False, "computed_at": now, "run_id": run_id}
        for row in latest.to_pylist()
    ]  # fmt: skip


def _record_lost(store: Path, rows: list[dict], run_id: str) -> list[str]:
    """The rows, one ledger file per (cohort, model_key) partition (a file is atomic)."""
    done = []
    parts: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        parts.setdefault((row["cohort"], row["model_key"]), []).append(row)
    for n, ((cohort, model_key), part) in enumerate(sorted(parts.items())):
        fid = f"{run_id}-{n:05d}"
        for row in part:
            row["flush_id"] = fid
        write_table(
            store, "ledger", table_from_rows("ledger", part),
            partition={"cohort": cohort, "model_key": model_key}, file_key=fid,
        )  # fmt: skip
        slots = ", ".join(sorted({str(r["slot"]) for r in part}))
        done.append(f"model_key {model_key}: segmented again by the next run: {slots}")
    return done


def repair_store(store: Path, problems: Iterable[Problem]) -> list[str]:
    """Make the next run redo what ``problems`` lost (under the store lock); return what was
    done, a line each."""
    problems = list(problems)
    done = [f"recovery: {line}" for line in recover(store)]
    flushes = sorted({p.flush_id for p in problems if p.kind == "table_file" and p.flush_id})
    done += [_uncommit_flush(store, fid) for fid in flushes]
    if flushes:
        recover(store)  # rolls back every flush uncommitted above
    for p in problems:
        if p.kind == "table_file" and not p.flush_id:
            done.append(f"{p.path}: not a flush's file; restore it from a backup")
        elif p.kind == "segmentation":
            Path(store, p.path).unlink(missing_ok=True)
            done.append(f"{p.path}: removed")
        elif p.kind == "qc_picture":
            done.append(f"{p.path}: missing; `mrcohort run --force` on its input redraws it")
    run_id = f"verify-{new_run_id()}"
    done += _record_lost(store, _lost_segmentation_rows(store, problems, run_id), run_id)
    return done
