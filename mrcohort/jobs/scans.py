"""The ingest job: discover and read a whole cohort, write its ``scans`` and ``failures``.

One ``scans`` row per participant x visit x sequence x channel x station
(`mrcohort.jobs.scan_rows`). Expected problems never stop the batch: each becomes one failure
row with a stable code (docs/failures.md).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mrcohort.cohort import (
    Discovery,
    LayoutConfig,
    LoadedVisit,
    ParticipantVisit,
    discover,
    load_layout,
    load_visit,
)
from mrcohort.errors import MrcohortError, guard
from mrcohort.ids import check_partition_value
from mrcohort.jobs.flush import Flusher, recover
from mrcohort.jobs.ledger import Action, Keys, WorkItem, plan, read_ledger
from mrcohort.jobs.lock import StoreLock
from mrcohort.jobs.participant import WorkContext
from mrcohort.jobs.records import ledger_row, new_run_id, rejected_rows, work_failure_row
from mrcohort.jobs.scan_rows import geometry_columns, layout_params_hash, scan_rows
from mrcohort.schemas.rows import NO_MEASURE_KEY, NO_MODEL_KEY

__all__ = ["IngestSummary", "geometry_columns", "ingest", "layout_params_hash", "scan_rows"]

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- ingest


@dataclass
class IngestSummary:
    """What :func:`ingest` did."""

    n_visits: int = 0
    n_loaded: int = 0
    n_up_to_date: int = 0
    n_scan_rows: int = 0
    failures: list[dict[str, object]] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)

    @property
    def n_failed(self) -> int:
        return len(self.failures)


def _read_one(
    item: WorkItem, ctx: WorkContext, params: str
) -> tuple[dict[str, list[dict[str, object]]], dict[str, object], LoadedVisit | MrcohortError]:
    """Read one participant-visit: its scans rows, failure rows (the visit's, or one per
    failed sequence, slot ``<pv>|<sequence>``) and its ledger row."""
    pv = item.pv
    assert pv is not None and ctx.layout_config is not None
    start = time.perf_counter()
    try:
        with guard("ingest"):
            loaded: LoadedVisit | MrcohortError = load_visit(pv, config=ctx.layout_config)
    except MrcohortError as err:
        loaded = err
    seconds = {"ingest": round(time.perf_counter() - start, 3)}
    if isinstance(loaded, MrcohortError):
        failures = [work_failure_row(ctx, item, loaded, None)]
        row = ledger_row(
            ctx,
            item,
            input_sha256=None,
            segmentation_sha256=None,
            err=loaded,
            wrote_scans=False,
            seconds=seconds,
            worker=None,
        )
        return {"failures": failures}, row, loaded
    scans = (
        []
        if loaded.input_sha256 == item.scans_sha256
        else scan_rows(loaded, cohort=ctx.cohort, config=ctx.layout_config, run_id=ctx.run_id)
    )
    failures = [
        {
            **work_failure_row(ctx, item, err, loaded.input_sha256),
            "slot": f"{item.slot}|{seq}",
            "params_hash": params,
        }
        for seq, err in loaded.errors.items()
    ]
    row = ledger_row(
        ctx,
        item,
        input_sha256=loaded.input_sha256,
        segmentation_sha256=None,
        err=None,
        wrote_scans=bool(scans),
        seconds=seconds,
        worker=None,
    )
    return {"scans": scans, "failures": failures}, row, loaded


def ingest(
    layout: str,
    source: str | os.PathLike[str],
    *,
    cohort: str,
    store: str | os.PathLike[str],
    config: LayoutConfig | None = None,
    flush_every: int = 200,
    on_progress: Callable[[ParticipantVisit, LoadedVisit | MrcohortError], None] | None = None,
    discovery: Discovery | None = None,
) -> IngestSummary:
    """Discover and read a cohort; write its ``scans`` and ``failures`` tables.

    The same ledger and flushes as the cohort job (`mrcohort.jobs.run`), under
    ``model_key = measure_key = "none"``: a re-run reads only new or changed inputs, rows
    are written once (a later ``mrcohort run`` does not write the scans rows of an input
    whose scans are stored), and a crash loses at most the unflushed tail.

    Parameters
    ----------
    layout
        ``ukbb``, ``nako`` or ``manifest``.
    source
        Cohort folder or manifest.
    cohort
        Cohort name (partition value, ``[A-Za-z0-9_.-]+``).
    store
        Store root (:mod:`mrcohort.schemas.store`).
    config
        Layout settings; default ``load_layout(layout)``.
    flush_every
        Participant-visits per flush.
    on_progress
        Called after each participant-visit read with its result.
    discovery
        The result of ``discover(layout, source, config=config)`` if already at hand.
    """
    check_partition_value(cohort, "cohort name")
    config = config or load_layout(layout)
    root = Path(source)
    found = discovery if discovery is not None else discover(layout, root, config=config)
    store = Path(store)
    store.mkdir(parents=True, exist_ok=True)
    run_id = new_run_id()
    ctx = WorkContext(
        cohort=cohort,
        store=store,
        run_id=run_id,
        layout=layout,
        model="",
        model_key=NO_MODEL_KEY,
        measure_key=NO_MEASURE_KEY,
        layout_config=config,
    )
    params = layout_params_hash(config)
    summary = IngestSummary(n_visits=len(found.pvs))
    with StoreLock(store, run_id=run_id, command="mrcohort ingest"):
        recover(store)
        state = read_ledger(store, Keys(cohort, NO_MODEL_KEY, NO_MEASURE_KEY))
        job_plan = plan(found, state, root=root if root.is_dir() else root.parent)
        flusher = Flusher(
            store,
            cohort=cohort,
            model_key=NO_MODEL_KEY,
            run_id=run_id,
            every_n=flush_every,
            every_s=300.0,
        )
        try:
            for item in job_plan.items:
                _ingest_item(item, ctx, params, flusher, summary, on_progress)
        finally:
            flusher.flush()
    summary.files = flusher.files
    return summary


def _ingest_item(
    item: WorkItem,
    ctx: WorkContext,
    params: str,
    flusher: Flusher,
    summary: IngestSummary,
    on_progress: Callable[[ParticipantVisit, LoadedVisit | MrcohortError], None] | None,
) -> None:
    if item.action is Action.SKIP:
        summary.n_up_to_date += 1
        return
    if item.rejected is not None:
        failure, row = rejected_rows(ctx, item)
        failure["params_hash"] = params
        tables: dict[str, list[dict[str, object]]] = {"failures": [failure]}
    else:
        tables, row, loaded = _read_one(item, ctx, params)
        summary.n_loaded += not isinstance(loaded, MrcohortError)
        summary.n_scan_rows += len(tables.get("scans", []))
        if on_progress is not None and item.pv is not None:
            on_progress(item.pv, loaded)
    summary.failures.extend(tables["failures"])
    replaces_scans = item.replaces_scans if tables.get("scans") else ()
    flusher.add(tables, row, replaces=item.replaces, replaces_scans=replaces_scans)
    if flusher.due():
        flusher.flush()
