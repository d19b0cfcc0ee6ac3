"""Compaction: merge the many small files a long job leaves (one per flush and table) into
files of about ``target_participants`` participant-visits each, without changing the rows.

A flush writes ``part-<flush_id>.parquet`` into every table's partition, and the ledger
remembers the flush behind each row (later runs drop superseded rows from that flush's files).
Compaction keeps that bookkeeping true: consecutive flushes of one ``(cohort, model_key)``
become one *compacted flush* ``<stamp>-c<tag>-<n>``, in every table at once (``scans`` included),
and the ledger rows of the merged flushes are rewritten to name it.

Readers are never shown a row twice or a row missing: each partition folder is rebuilt beside
the live one (hard links to the untouched files plus the merged files) and the two folders are
swapped in one ``renameat2(RENAME_EXCHANGE)`` — a reader lists either the old set of files or
the new one. A reader that listed the old folder and opens a file after the swap gets
"file not found" (never wrong rows); :func:`mrcohort.open_table` then reads again. Where the
filesystem cannot exchange folders (NFS, some parallel filesystems), :func:`compact` refuses
unless ``offline=True`` (two renames: a reader in that instant can miss a partition).

Crash safety: a journal entry ``<store>/.mrcohort/compact/<id>.json`` names the groups before
any folder is swapped; :func:`recover_compactions` (run by every job's recovery, and by
:func:`compact` first) redoes the partitions still holding a merged flush's file.

Hand-written: no library compacts plain hive-partitioned Parquet atomically for readers that
list folders (Delta Lake / Iceberg do it through their own table formats).
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from mrcohort.io.files import atomic_target, fsync_dir, write_json_durably
from mrcohort.schemas.rows import NO_MODEL_KEY
from mrcohort.schemas.store import STAGING_DIR
from mrcohort.schemas.tables import PARTITION_KEYS, schema

__all__ = [
    "CompactionSummary",
    "compact",
    "compaction_hint",
    "plan_groups",
    "recover_compactions",
]

#: Tables written by flushes; ``scans`` lives in the ``model_key=none`` partition.
FLUSH_TABLES: tuple[str, ...] = (
    "scans",
    "organ_metrics",
    "vessel_metrics",
    "qc",
    "failures",
    "ledger",
)
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


class ExchangeUnsupported(OSError):
    """The filesystem cannot swap two folders atomically."""


@dataclass(frozen=True)
class CompactionSummary:
    """What :func:`compact` did."""

    partitions: int
    flushes_merged: int
    files_before: int
    files_after: int
    seconds: float


def journal_dir(store: Path) -> Path:
    """Folder of the compaction journal."""
    return Path(store, ".mrcohort", "compact")


def _part_name(flush_id: str) -> str:
    return f"part-{flush_id}.parquet"


def _flush_id(path: Path) -> str:
    return path.name.removeprefix("part-").removesuffix(".parquet")


def plan_groups(sizes: list[tuple[str, int]], target: int) -> list[list[str]]:
    """Consecutive flushes (``(flush_id, participant-visits)``, in order) grouped so that a
    group holds at most ``target`` participant-visits (a bigger flush stays alone); only the
    groups of two or more flushes are returned — the ones worth merging."""
    groups: list[list[str]] = []
    current: list[str] = []
    total = 0
    for fid, n in sizes:
        if current and total + n > target:
            groups.append(current)
            current, total = [], 0
        current.append(fid)
        total += n
    if current:
        groups.append(current)
    return [g for g in groups if len(g) > 1]


def _partition(store: Path, table: str, cohort: str, model_key: str) -> Path:
    key = NO_MODEL_KEY if table == "scans" else model_key
    return Path(store, table, f"cohort={cohort}", f"model_key={key}")


def _ledger_partitions(store: Path) -> Iterator[tuple[str, str]]:
    for folder in sorted(Path(store, "ledger").glob("cohort=*/model_key=*")):
        if folder.is_dir():
            yield folder.parent.name.split("=", 1)[1], folder.name.split("=", 1)[1]


def _sizes(folder: Path) -> list[tuple[str, int]]:
    """(flush_id, ledger rows) of every ledger file, oldest first (every id, compacted ones
    too, starts with a UTC stamp)."""
    files = sorted(folder.glob("part-*.parquet"))
    return [(_flush_id(p), pq.ParquetFile(p).metadata.num_rows) for p in files]


def _merged(files: list[Path], table: str, new_id: str) -> pa.Table:
    """The rows of ``files`` as one table (the declared columns, minus the partition keys)."""
    declared = schema(table)
    body = pa.schema([f for f in declared if f.name not in PARTITION_KEYS])
    merged = ds.dataset([str(f) for f in files], format="parquet", schema=body).to_table()
    if table == "ledger":
        merged = merged.set_column(
            merged.schema.get_field_index("flush_id"),
            body.field("flush_id"),
            pa.array([new_id] * merged.num_rows, pa.string()),
        )
    return merged


def _exchange(a: Path, b: Path) -> None:
    """Swap two folders in one step (Linux ``renameat2`` with ``RENAME_EXCHANGE``)."""
    libc = ctypes.CDLL(None, use_errno=True)
    fn = getattr(libc, "renameat2", None)
    if fn is None:
        raise ExchangeUnsupported(errno.ENOSYS, "renameat2 is not available")
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) != 0:
        err = ctypes.get_errno()
        if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise ExchangeUnsupported(err, f"cannot exchange folders on this filesystem: {a}")
        raise OSError(err, os.strerror(err), str(a))


def _swap_in(staged: Path, live: Path, *, offline: bool) -> None:
    """Make ``staged`` the live folder; the old content ends up at ``staged``."""
    if not offline:
        _exchange(staged, live)
        return
    aside = staged.with_name(staged.name + ".old")
    os.rename(live, aside)
    os.rename(staged, live)
    os.rename(aside, staged)


def _prepare(store: Path, live: Path, table: str, groups: dict[str, list[str]]) -> Path | None:
    """A staged copy of the partition folder ``live`` in which the files of each group are
    merged into one (hard links to the rest); None when ``live`` holds no member file (done
    already, or the table has no rows of these flushes)."""
    present = {p.name for p in live.glob("part-*.parquet")} if live.is_dir() else set()
    todo = {
        new: [live / _part_name(f) for f in members if _part_name(f) in present]
        for new, members in groups.items()
    }
    todo = {new: files for new, files in todo.items() if files}
    if not todo:
        return None
    staged = Path(store, STAGING_DIR, f"compact-{uuid.uuid4().hex}")
    staged.mkdir(parents=True)
    try:
        merged_names = {f.name for files in todo.values() for f in files}
        for extra in live.iterdir():  # untouched files (and anything else): hard links
            if extra.is_file() and extra.name not in merged_names:
                os.link(extra, staged / extra.name)
        for new, files in todo.items():
            with atomic_target(staged / _part_name(new), staging_dir=staged.parent) as tmp:
                pq.write_table(_merged(files, table, new), tmp, compression="zstd")
        os.chmod(staged, live.stat().st_mode & 0o7777)
        fsync_dir(staged)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    return staged


def _swap_all(pairs: list[tuple[Path, Path]], *, offline: bool) -> None:
    """Swap every staged folder in, one right after the other (a reader retrying after a
    vanished file finds the new set at once), then delete the old folders."""
    try:
        for staged, live in pairs:
            _swap_in(staged, live, offline=offline)
        for parent in {live.parent for _, live in pairs}:
            fsync_dir(parent)
    finally:
        for staged, _ in pairs:
            shutil.rmtree(staged, ignore_errors=True)


def _write_journal(store: Path, entry: dict) -> Path:
    dest = journal_dir(store) / f"{entry['id']}.json"
    write_json_durably(dest, entry)
    return dest


def _apply(store: Path, entry: dict) -> None:
    """Stage every table partition the entry names, then swap them all in (idempotent:
    partitions already swapped hold no member file and are skipped); ledger last.

    One folder can serve several entries' partitions (``scans/cohort=c/model_key=none``
    holds the scans rows of every model's flushes): it is staged once with all their groups,
    or the second swap would bring back files the first one merged."""
    work: dict[Path, tuple[str, dict[str, list[str]]]] = {}
    for part in entry["partitions"]:
        for table in FLUSH_TABLES:
            live = _partition(store, table, part["cohort"], part["model_key"])
            work.setdefault(live, (table, {}))[1].update(part["groups"])
    pairs: list[tuple[Path, Path]] = []
    try:
        for live, (table, groups) in work.items():
            staged = _prepare(store, live, table, groups)
            if staged is not None:
                pairs.append((staged, live))
    except BaseException:
        for staged, _ in pairs:
            shutil.rmtree(staged, ignore_errors=True)
        raise
    pairs.sort(key=lambda pair: pair[1].parts[-3] == "ledger")  # the ledger's names last
    _swap_all(pairs, offline=bool(entry.get("offline")))


def recover_compactions(store: Path) -> list[str]:
    """Finish compactions a crash interrupted (run under the store lock)."""
    done: list[str] = []
    for leftover in Path(store, STAGING_DIR).glob("compact-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    for path in sorted(journal_dir(store).glob("*.json")):
        try:
            entry = json.loads(path.read_text())
        except ValueError:  # cut short before any folder was swapped
            path.unlink()
            continue
        _apply(store, entry)
        path.unlink()
        done.append(f"finished compaction {entry['id']}")
    return done


def compact(
    store: Path, *, target_participants: int = 1000, offline: bool = False
) -> CompactionSummary:
    """Merge each partition's flush files into files of ~``target_participants``.

    Call under the store lock (:class:`mrcohort.jobs.lock.StoreLock`) after
    :func:`mrcohort.jobs.flush.recover`. Raises :class:`ExchangeUnsupported` where folders
    cannot be swapped atomically and ``offline`` is False (before anything is changed).
    """
    if target_participants < 1:
        raise ValueError("target_participants must be at least 1")
    started = time.perf_counter()
    files_before = _count_files(store)
    recover_compactions(store)
    if not offline:
        _check_exchange(store)
    tag = uuid.uuid4().hex[:6]
    partitions = []
    for cohort, model_key in _ledger_partitions(store):
        sizes = _sizes(Path(store, "ledger", f"cohort={cohort}", f"model_key={model_key}"))
        groups = plan_groups(sizes, target_participants)
        if groups:
            part_tag = f"{tag}{len(partitions):03d}"
            named = {_compacted_id(g, part_tag, i): g for i, g in enumerate(groups)}
            partitions.append({"cohort": cohort, "model_key": model_key, "groups": named})
    if partitions:
        entry = {"id": tag, "offline": offline, "partitions": partitions}
        journal = _write_journal(store, entry)
        _apply(store, entry)
        journal.unlink()
    merged = sum(len(g) for p in partitions for g in p["groups"].values())
    return CompactionSummary(
        len(partitions), merged, files_before, _count_files(store), time.perf_counter() - started
    )


def _check_exchange(store: Path) -> None:
    """Raise :class:`ExchangeUnsupported` if the store's filesystem cannot swap folders."""
    probe = Path(store, STAGING_DIR, f"compact-probe-{uuid.uuid4().hex}")
    a, b = probe / "a", probe / "b"
    a.mkdir(parents=True)
    b.mkdir()
    try:
        _exchange(a, b)
    finally:
        shutil.rmtree(probe, ignore_errors=True)


def _compacted_id(members: list[str], tag: str, index: int) -> str:
    """A merged flush's id: its first member's UTC stamp (so files keep sorting by age),
    ``c`` for compacted, a tag unique to this compaction."""
    return f"{members[0].split('-', 1)[0]}-c{tag}-{index:05d}"


def compaction_hint(store: Path, cohort: str, model_key: str, n_inputs: int) -> str | None:
    """A line suggesting ``mrcohort compact`` when the model's partition holds many more
    files than compacted files of 1,000 participant-visits would be (queries read them ~3x
    slower; benchmarks/RESULTS.md); None otherwise. Not done automatically: it rewrites every
    table's files, which users schedule."""
    folder = Path(store, "ledger", f"cohort={cohort}", f"model_key={model_key}")
    n_files = sum(1 for _ in folder.glob("part-*.parquet"))
    if n_files >= 20 and n_files > 4 * (n_inputs // 1000 + 1):
        return (
            f"{n_files} small files per table: `mrcohort compact --store {store}` merges them "
            "into files of ~1,000 participant-visits (faster queries; rows unchanged)"
        )
    return None


def _count_files(store: Path) -> int:
    return sum(
        1
        for table in FLUSH_TABLES
        for _ in Path(store, table).glob("cohort=*/model_key=*/part-*.parquet")
    )
