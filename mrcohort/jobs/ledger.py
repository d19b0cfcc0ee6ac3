"""The ledger: what the store already holds for a cohort, and what a run must do.

A unit of work is one input (a participant-visit, identified by its content hash
``input_sha256``) under one model (``model_key``) and one measurement (``measure_key``). The
``ledger`` table records every attempt (`mrcohort.schemas.run_tables.LEDGER`); its rows are
written last in every flush, so a ledger row means the attempt's rows are all in the store.

:func:`read_ledger` reads what is done (one DuckDB pass per question, partition-pruned);
:func:`plan` compares it with what discovery found and decides, per input, whether it is up
to date, needs measuring only (its segmentation is stored) or segmenting and measuring. It
never reads an input: unchanged inputs are recognised by their fingerprint
(`mrcohort.cohort.fingerprint`), changed or new ones are hashed by the workers.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from mrcohort.cohort import Discovery, ParticipantVisit, Rejected, relative_path
from mrcohort.cohort.fingerprint import input_fingerprint, path_fingerprint

__all__ = [
    "Action",
    "Attempt",
    "Keys",
    "LedgerState",
    "Plan",
    "WorkItem",
    "plan",
    "read_ledger",
    "rejected_slot",
    "slot_of",
    "source_slot",
]


class Action(str, enum.Enum):
    """What a run does with one input."""

    SEGMENT = "segment"  # read, stitch, segment, measure
    MEASURE = "measure"  # read, stitch, measure from the stored segmentation
    REJECT = "reject"  # record discovery's failure row
    SKIP = "skip"  # up to date


@dataclass(frozen=True)
class Keys:
    """The identity of a job's results: cohort, model and measurement."""

    cohort: str
    model_key: str
    measure_key: str


@dataclass(frozen=True)
class Attempt:
    """The latest ledger row of an input slot under a job's keys."""

    fingerprint: str
    input_sha256: str | None
    outcome: str
    retryable: bool
    segmentation_sha256: str | None


@dataclass
class LedgerState:
    """What the store holds for one cohort and one job's keys."""

    latest: dict[str, Attempt] = field(default_factory=dict)
    """slot -> latest attempt under (model_key, measure_key)."""
    sha_by_fingerprint: dict[str, str] = field(default_factory=dict)
    """fingerprint -> input_sha256 (any model: a hash cache)."""
    segmentations: dict[str, str] = field(default_factory=dict)
    """input_sha256 -> sha256 of its stored segmentation under model_key."""
    scans: dict[str, str] = field(default_factory=dict)
    """slot -> input_sha256 whose scans rows the store holds."""
    flushes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """slot -> flushes holding its rows under (model_key, measure_key)."""
    scans_flushes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """slot -> flushes holding its scans rows."""


@dataclass(frozen=True)
class WorkItem:
    """One input and what to do with it (sent to a worker when there is work)."""

    slot: str
    fingerprint: str
    action: Action
    source: str = ""
    """The input's path relative to the cohort folder."""
    pv: ParticipantVisit | None = None
    rejected: Rejected | None = None
    known_sha256: str | None = None
    """The input's hash when the fingerprint is known (the worker checks it)."""
    segmentation_sha256: str | None = None
    """Expected hash of the stored segmentation (action MEASURE)."""
    scans_sha256: str | None = None
    """Input hash whose scans rows are stored for this slot (none written again)."""
    replaces: tuple[str, ...] = ()
    """Earlier flushes whose rows of this slot the new attempt supersedes."""
    replaces_scans: tuple[str, ...] = ()
    """Earlier flushes holding this slot's scans rows (superseded if new ones are written)."""
    done_sha256: str | None = None
    """Input hash the slot's latest attempt measured successfully under these keys: an input
    that hashes to it again (a touched, copied or moved file) needs only a new ledger row."""
    done_segmentation_sha256: str | None = None
    """The stored segmentation of that attempt."""


@dataclass
class Plan:
    """Every input discovery saw, with its action; counts for the summary line."""

    items: list[WorkItem]

    def count(self, action: Action) -> int:
        return sum(item.action is action for item in self.items)

    @property
    def work(self) -> list[WorkItem]:
        """Items for the workers (segment or measure), in discovery order."""
        return [i for i in self.items if i.action in (Action.SEGMENT, Action.MEASURE)]

    def summary(self) -> str:
        """``1,204 to segment, 3,511 to measure only, 95,285 up to date`` (+ rejected)."""
        line = (
            f"{self.count(Action.SEGMENT):,} to segment, "
            f"{self.count(Action.MEASURE):,} to measure only, "
            f"{self.count(Action.SKIP):,} up to date"
        )
        rejected = self.count(Action.REJECT)
        return line + (f", {rejected:,} rejected by discovery" if rejected else "")


def slot_of(pv: ParticipantVisit) -> str:
    """Slot of a participant-visit: ``participant_id/visit``."""
    return f"{pv.participant_id}/{pv.visit}"


def rejected_slot(rej: Rejected, root: Path) -> str:
    """Slot of a rejected input: ``participant_id/visit`` when discovery named both, else
    :func:`source_slot` (`plan` makes it unique)."""
    if rej.participant_id and rej.visit and rej.key is None:
        return f"{rej.participant_id}/{rej.visit}"
    return source_slot(rej, root)


def source_slot(rej: Rejected, root: Path) -> str:
    """``source:<path>`` of a rejected input, ``source:<path>#<row key>`` for a manifest row
    (its content: the slot stays when other rows are added or moved)."""
    where = relative_path(rej.source, root)
    return f"source:{where}" + (f"#{rej.key}" if rej.key is not None else "")


def _glob(store: Path, cohort: str, model_key: str | None = None) -> str | None:
    folder = Path(store, "ledger", f"cohort={cohort}")
    if model_key is not None:
        folder = folder / f"model_key={model_key}"
    if not folder.is_dir() or not any(folder.rglob("*.parquet")):
        return None
    return (folder / "**" / "*.parquet").as_posix().replace("'", "''")


def _rows(con: duckdb.DuckDBPyConnection, sql: str, glob: str) -> list[tuple]:
    source = f"read_parquet('{glob}', hive_partitioning = true, union_by_name = true)"
    return con.execute(sql.format(ledger=source)).fetchall()


def read_ledger(store: Path, keys: Keys) -> LedgerState:
    """What the store's ledger holds for ``keys.cohort`` (and the job's model/measure keys).

    Reads only the ledger table: 100,000 participant-visits take about a second
    (`benchmarks/job_scale.py`).
    """
    state = LedgerState()
    any_model = _glob(store, keys.cohort)
    if any_model is None:
        return state
    con = duckdb.connect()
    try:
        for fp, sha in _rows(
            con,
            "SELECT fingerprint, arg_max(input_sha256, computed_at) FROM {ledger} "
            "WHERE input_sha256 IS NOT NULL GROUP BY fingerprint",
            any_model,
        ):
            state.sha_by_fingerprint[fp] = sha
        for slot, sha, fids in _rows(
            con,
            "SELECT slot, arg_max(input_sha256, computed_at), list(DISTINCT flush_id) "
            "FROM {ledger} WHERE wrote_scans GROUP BY slot",
            any_model,
        ):
            state.scans[slot] = sha
            state.scans_flushes[slot] = tuple(fids)
        this_model = _glob(store, keys.cohort, keys.model_key)
        if this_model is None:
            return state
        for sha, seg in _rows(
            con,
            "SELECT input_sha256, arg_max(segmentation_sha256, computed_at) FROM {ledger} "
            "WHERE segmentation_sha256 IS NOT NULL GROUP BY input_sha256",
            this_model,
        ):
            state.segmentations[sha] = seg
        measure = keys.measure_key.replace("'", "''")
        for slot, fp, sha, outcome, retryable, seg, fids in _rows(
            con,
            "SELECT slot, arg_max(fingerprint, computed_at), arg_max(input_sha256, computed_at), "
            "arg_max(outcome, computed_at), arg_max(retryable, computed_at), "
            "arg_max(segmentation_sha256, computed_at), list(DISTINCT flush_id) FROM {ledger} "
            f"WHERE measure_key = '{measure}' GROUP BY slot",
            this_model,
        ):
            state.latest[slot] = Attempt(fp, sha, outcome, bool(retryable), seg)
            state.flushes[slot] = tuple(fids)
    finally:
        con.close()
    return state


def _is_done(attempt: Attempt | None, fingerprint: str, *, retry_failed: bool) -> bool:
    """The slot's latest attempt covers this input version and needs no new attempt."""
    if attempt is None or attempt.fingerprint != fingerprint:
        return False
    if attempt.outcome == "ok":
        return True
    return not (attempt.retryable or retry_failed)


def _pv_item(
    pv: ParticipantVisit, slot: str, state: LedgerState, *, force: bool, retry_failed: bool
) -> WorkItem:
    fp = input_fingerprint(pv)
    attempt = state.latest.get(slot)
    sha = state.sha_by_fingerprint.get(fp)
    common = {
        "source": pv.relative_source,
        "pv": pv,
        "known_sha256": sha,
        "scans_sha256": state.scans.get(slot),
        "replaces": state.flushes.get(slot, ()),
        "replaces_scans": state.scans_flushes.get(slot, ()),
    }
    if force:
        return WorkItem(slot, fp, Action.SEGMENT, **common)
    if attempt is not None and attempt.outcome == "ok":
        common["done_sha256"] = attempt.input_sha256
        common["done_segmentation_sha256"] = attempt.segmentation_sha256
    if _is_done(attempt, fp, retry_failed=retry_failed):
        return WorkItem(slot, fp, Action.SKIP, **common)
    seg = state.segmentations.get(sha) if sha else None
    if seg is not None:
        return WorkItem(slot, fp, Action.MEASURE, segmentation_sha256=seg, **common)
    return WorkItem(slot, fp, Action.SEGMENT, **common)


def _rejected_item(
    rej: Rejected,
    slot: str,
    fp: str,
    root: Path,
    state: LedgerState,
    *,
    force: bool,
    retry_failed: bool,
) -> WorkItem:
    done = not force and _is_done(state.latest.get(slot), fp, retry_failed=retry_failed)
    action = Action.SKIP if done else Action.REJECT
    return WorkItem(
        slot,
        fp,
        action,
        source=relative_path(rej.source, root),
        rejected=rej,
        replaces=state.flushes.get(slot, ()),
    )


def _rejected_fingerprint(rej: Rejected, root: Path) -> str:
    # a manifest row is its own content: editing other rows changes nothing for it
    return f"row:{rej.key}" if rej.key is not None else path_fingerprint(rej.source, root)


def _duplicate_visit(pv: ParticipantVisit, kept: ParticipantVisit) -> Rejected:
    """The ``DUPLICATE_VISIT`` rejection of ``pv``, a second input that claims the
    participant-visit of ``kept`` (which is processed)."""
    return Rejected(
        pv.source,
        "DUPLICATE_VISIT",
        f"{pv.relative_source} claims participant {pv.participant_id} visit {pv.visit}, "
        f"already claimed by {kept.relative_source} (processed); this one is not read",
        participant_id=pv.participant_id,
        visit=pv.visit,
    )


class _Slots:
    """Slots handed out so far: each input of a plan gets its own."""

    def __init__(self) -> None:
        self.taken: set[str] = set()

    def take(self, *candidates: str) -> str:
        """The first free candidate, else the last one with the lowest free ``#n`` (``n`` >=
        2: inputs with one identity are numbered in discovery order)."""
        for slot in candidates:
            if slot not in self.taken:
                break
        else:
            n = 2
            while f"{candidates[-1]}#{n}" in self.taken:
                n += 1
            slot = f"{candidates[-1]}#{n}"
        self.taken.add(slot)
        return slot


def plan(
    found: Discovery,
    state: LedgerState,
    *,
    root: Path,
    force: bool = False,
    retry_failed: bool = False,
) -> Plan:
    """Wanted − done: one :class:`WorkItem` per input discovery saw, each with its own slot.

    Every input is decided under the slot it is written under (its ledger attempt, the
    flushes its new rows supersede), so two inputs that share an identity never read or
    replace each other's rows:

    * participant-visits keep ``participant_id/visit``; a second input claiming one that is
      already taken (a layout that yields it twice) is not read: it becomes a
      ``DUPLICATE_VISIT`` rejection, and the first one in discovery order is processed;
    * a rejected input whose ``participant_id/visit`` is taken falls back to its source
      path (:func:`source_slot`); rejected inputs still sharing a slot (identical manifest
      rows) get ``#2``, ``#3``… in discovery order.

    Parameters
    ----------
    found
        Discovery's participant-visits and rejected inputs.
    state
        :func:`read_ledger` of the store.
    root
        The cohort folder (rejected inputs' paths are relative to it).
    force
        Recompute everything (segmentations included).
    retry_failed
        Also redo inputs whose last attempt failed because of the input itself (failures
        caused by the environment are always retried).
    """
    slots = _Slots()
    items: list[WorkItem] = []
    kept: dict[str, ParticipantVisit] = {}
    duplicates: list[tuple[Rejected, str]] = []
    for pv in found.pvs:
        slot = slot_of(pv)
        if slot in kept:
            duplicates.append((_duplicate_visit(pv, kept[slot]), input_fingerprint(pv)))
            continue
        kept[slot] = pv
        items.append(_pv_item(pv, slots.take(slot), state, force=force, retry_failed=retry_failed))
    rejected = [*duplicates, *((r, _rejected_fingerprint(r, root)) for r in found.rejected)]
    for rej, fp in rejected:
        slot = slots.take(rejected_slot(rej, root), source_slot(rej, root))
        items.append(
            _rejected_item(rej, slot, fp, root, state, force=force, retry_failed=retry_failed)
        )
    return Plan(items)
