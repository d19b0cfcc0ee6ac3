"""The cohort job: plan (wanted − done), then only the difference on Dask, saved as it lands.

::

    summary = run_job(load_config("job.toml"))

Under the store lock: recover interrupted flushes, write the resolved configuration to
``<store>/runs/<run_id>/config.toml``, discover the inputs, read the ledger, plan, print
``1,204 to segment, 3,511 to measure only, 95,285 up to date``, then keep a bounded number of
participant-visits in flight on the cluster and flush their rows every N inputs or T seconds.
A run ends with a check that every input discovery saw is in the store exactly once
(`mrcohort.jobs.accounting`; a failed check is ``ACCOUNTING``: the run's status.json names the
inputs, its ``runs`` row says ``failed``), then its ``runs`` row.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from mrcohort.cohort import discover
from mrcohort.config import JobConfig, config_hash, dump_config, require_paths
from mrcohort.errors import MrcohortError
from mrcohort.faults import check_failpoints, failpoint
from mrcohort.io.files import atomic_target
from mrcohort.jobs.accounting import Accounting, AccountingError, check_accounting
from mrcohort.jobs.compact import compaction_hint
from mrcohort.jobs.context import work_context
from mrcohort.jobs.dispatch import StageFunctions, dispatch
from mrcohort.jobs.flush import Flusher, recover
from mrcohort.jobs.ledger import Action, Keys, Plan, WorkItem, plan, read_ledger
from mrcohort.jobs.lock import StoreLock
from mrcohort.jobs.models import register_model
from mrcohort.jobs.participant import ParticipantResult, WorkContext
from mrcohort.jobs.progress import ProgressReporter, ProgressTracker
from mrcohort.jobs.records import new_run_id, rejected_rows, run_row
from mrcohort.jobs.scratch import clear_scratch
from mrcohort.schemas.conform import table_from_rows
from mrcohort.schemas.rows import utc_now
from mrcohort.schemas.store import write_table

__all__ = ["RunSummary", "new_run_id", "run_job", "work_context"]

log = logging.getLogger("mrcohort")

#: Failure rows a summary keeps for printing (the tables hold them all).
_SUMMARY_FAILURES = 200


@dataclass
class RunSummary:
    """What a run did."""

    run_id: str
    model_key: str
    measure_key: str
    plan: str = ""
    n_planned: dict[str, int] = field(default_factory=dict)
    n_ok: int = 0
    n_failed: int = 0
    failures: list[dict[str, object]] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)
    accounting: Accounting | None = None
    """The end-of-run check: every input discovery saw in the store exactly once."""


@contextmanager
def _run_log(run_dir: Path) -> Iterator[None]:
    """The run's log file ``runs/<run_id>/log.txt`` (the ``mrcohort`` logger, INFO)."""
    handler = logging.FileHandler(run_dir / "log.txt", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    log.addHandler(handler)
    previous = log.level
    log.setLevel(logging.INFO)
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.setLevel(previous)
        handler.close()


def _write_config(cfg: JobConfig, run_dir: Path) -> Path:
    path = run_dir / "config.toml"
    with atomic_target(path, suffix=".toml") as tmp:
        tmp.write_text(dump_config(cfg))
    return path


def _source_root(source: Path) -> Path:
    return source if source.is_dir() else source.parent


def run_job(
    cfg: JobConfig,
    *,
    client: object | None = None,
    functions: StageFunctions | None = None,
    console: Console | None = None,
    wait_for_lock: bool = False,
) -> RunSummary:
    """Run the cohort job of ``cfg``; see the module docstring.

    Parameters
    ----------
    cfg
        The resolved configuration (`mrcohort.config.load_config`).
    client
        A ``distributed.Client`` of any cluster; default: the embedded ``LocalCluster``.
    functions
        What workers run for each stage (benchmarks pass stand-ins).
    console
        Where the plan line and progress go (default: stderr).
    wait_for_lock
        Wait for another run on the same store to end instead of refusing.

    Raises
    ------
    MrcohortError
        ``STORE_BUSY`` (another run holds the store), ``BAD_CONFIG``, model and source
        errors, ``ACCOUNTING`` (an `AccountingError`, carrying the run's summary) when an
        input discovery saw is not in the store exactly once at the end: the rows written
        stay, the run's status.json names the inputs and its ``runs`` row says ``failed``.
    """
    require_paths(cfg)
    check_failpoints()
    cfg = _absolute_paths(cfg)
    console = console or Console(stderr=True)
    started_at = utc_now()
    run_id = new_run_id()
    ctx = work_context(cfg, run_id=run_id)  # model and layout settings checked first
    store = _writable_store(Path(cfg.store.path))
    with StoreLock(store, wait=wait_for_lock, run_id=run_id, command="mrcohort run"):
        recovered = recover(store)
        clear_scratch(store)  # stitched images of runs that died
        register_model(ctx, ctx.model_name)
        run_dir = store / "runs" / run_id
        run_dir.mkdir(parents=True, exist_ok=True)
        config_path = _write_config(cfg, run_dir)
        with _run_log(run_dir):
            for line in recovered:
                log.info("recovery: %s", line)
            try:
                summary = _run(cfg, ctx, run_dir, client, functions or StageFunctions(), console)
            except AccountingError as err:  # the rows stay: the runs row says what happened
                failed = err.summary
                assert isinstance(failed, RunSummary)
                failed.recovered = recovered
                _write_run_row(cfg, ctx, failed, started_at, config_path, state="failed")
                raise
            finally:
                clear_scratch(store, run_id)
            summary.recovered = recovered
            _write_run_row(cfg, ctx, summary, started_at, config_path)
            hint = compaction_hint(
                store, ctx.cohort, ctx.model_key, sum(summary.n_planned.values())
            )
            if hint:
                console.print(hint, highlight=False)
    return summary


def _absolute_paths(cfg: JobConfig) -> JobConfig:
    """Source and store as absolute paths (workers may run in another folder)."""
    return cfg.model_copy(
        update={
            "input": cfg.input.model_copy(
                update={"source": str(Path(cfg.input.source).absolute())}
            ),
            "store": cfg.store.model_copy(update={"path": str(Path(cfg.store.path).absolute())}),
        }
    )


def _writable_store(store: Path) -> Path:
    """The store folder, created if needed; ``STORE_NOT_WRITABLE`` before any work if it
    cannot be written."""
    import tempfile

    try:
        store.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=store):
            pass
    except OSError as exc:
        raise MrcohortError(
            "STORE_NOT_WRITABLE",
            f"store {store} is not a writable folder: {exc.strerror or exc}",
            stage="run",
        ) from exc
    return store


def _run(
    cfg: JobConfig,
    ctx: WorkContext,
    run_dir: Path,
    client: object | None,
    functions: StageFunctions,
    console: Console,
) -> RunSummary:
    run_id = ctx.run_id
    source = Path(cfg.input.source)
    found = discover(cfg.input.layout, source, config=ctx.layout_config)
    if not found.pvs and not found.rejected:
        raise MrcohortError(
            "NO_INPUTS",
            f"no participants found in {source} (layout {cfg.input.layout}, docs/layouts.md)",
            stage="ingest",
        )
    keys = Keys(ctx.cohort, ctx.model_key, ctx.measure_key)
    job_plan = plan(
        found,
        read_ledger(ctx.store, keys),
        root=_source_root(source),
        force=cfg.run.force,
        retry_failed=cfg.run.retry_failed,
    )
    summary = RunSummary(run_id, ctx.model_key, ctx.measure_key, plan=job_plan.summary())
    summary.n_planned = {a.value: job_plan.count(a) for a in Action}
    console.print(f"{ctx.cohort}: {summary.plan} (model_key {ctx.model_key})", highlight=False)
    log.info("run %s: %s", run_id, summary.plan)
    failpoint("run.planned")
    flusher = Flusher(
        ctx.store,
        cohort=ctx.cohort,
        model_key=ctx.model_key,
        run_id=run_id,
        every_n=cfg.store.flush_every_participants,
        every_s=cfg.store.flush_every_seconds,
    )
    tracker = ProgressTracker(
        run_id,
        extra={
            "plan": {
                "to_segment": job_plan.count(Action.SEGMENT),
                "to_measure": job_plan.count(Action.MEASURE),
                "up_to_date": job_plan.count(Action.SKIP),
                "rejected": job_plan.count(Action.REJECT),
            },
            "model_key": ctx.model_key,
            "pid": os.getpid(),
            "host": socket.gethostname(),
        },
    )
    tracker.start(len(job_plan.items), skipped=job_plan.count(Action.SKIP))
    reporter = ProgressReporter(
        tracker,
        console=console,
        interval_s=cfg.progress.interval_seconds,
        log=log,
        status_path=run_dir / "status.json",
        description=ctx.cohort,
    )
    with reporter:
        try:
            _record_rejected(job_plan, ctx, flusher, summary, tracker)
            for landed in dispatch(
                job_plan.work,
                ctx,
                cfg,
                client=client,
                functions=functions,
                console=console,
                on_submit=lambda _item: tracker.submitted(),
            ):
                if landed is None:  # nothing landed for a while: flush on time
                    if flusher.due():
                        _collect(flusher.flush(), summary)
                    reporter.refresh()
                    continue
                item, result = landed
                _add(flusher, item, result, summary)
                tracker.finished(result.ok, (result.failure or {}).get("stage"), result.failure)
                reporter.refresh()
        finally:
            _collect(flusher.flush(), summary)
        summary.files = flusher.files
        failpoint("run.flushed")
        _check_accounting(ctx, keys, job_plan, summary, tracker, run_dir)
    return summary


def _collect(ledger_rows: list[dict[str, object]], summary: RunSummary) -> None:
    """Count what a flush committed."""
    for row in ledger_rows:
        if row["outcome"] == "ok":
            summary.n_ok += 1
        else:
            summary.n_failed += 1


def _add(flusher: Flusher, item: WorkItem, result: ParticipantResult, summary: RunSummary) -> None:
    """Queue a result; its rows supersede the slot's earlier ones (an ``unchanged`` result
    writes no rows and supersedes nothing: the earlier rows stay the current ones)."""
    has_rows = any(result.tables.values())
    scans_replaced = item.replaces_scans if result.tables.get("scans") else ()
    flusher.add(
        result.tables,
        result.ledger,
        replaces=item.replaces if has_rows else (),
        replaces_scans=scans_replaced,
    )
    if result.failure is not None and len(summary.failures) < _SUMMARY_FAILURES:
        summary.failures.append(result.failure)
    if flusher.due():
        _collect(flusher.flush(), summary)


def _record_rejected(
    job_plan: Plan,
    ctx: WorkContext,
    flusher: Flusher,
    summary: RunSummary,
    tracker: ProgressTracker,
) -> None:
    """Inputs discovery refused: their failures row and ledger row, no worker needed."""
    for item in job_plan.items:
        if item.action is not Action.REJECT or item.rejected is None:
            continue
        failure, row = rejected_rows(ctx, item)
        _add(
            flusher,
            item,
            ParticipantResult(item.slot, {"failures": [failure]}, row, failure),
            summary,
        )
        tracker.submitted()
        tracker.finished(False, item.rejected.stage, failure)


def _check_accounting(
    ctx: WorkContext,
    keys: Keys,
    job_plan: Plan,
    summary: RunSummary,
    tracker: ProgressTracker,
    run_dir: Path,
) -> None:
    """After the last flush: every input discovery saw is in the store exactly once
    (`mrcohort.jobs.accounting`), recorded in status.json (``accounting``); ``ACCOUNTING``
    when not (raised inside the progress block: the status says ``failed``)."""
    result = check_accounting(ctx.store, keys, job_plan.items, run_id=ctx.run_id)
    summary.accounting = result
    tracker.update(accounting=result.as_status())
    if not result.ok:
        err = AccountingError(result, where=str(run_dir / "status.json"), summary=summary)
        log.error("%s", err)
        raise err


def _write_run_row(
    cfg: JobConfig,
    ctx: WorkContext,
    summary: RunSummary,
    started_at: dt.datetime,
    config_path: Path,
    *,
    state: str = "finished",
) -> None:
    counts = {
        "discovered": sum(summary.n_planned.values()),
        "to_segment": summary.n_planned.get("segment", 0),
        "to_measure": summary.n_planned.get("measure", 0),
        "up_to_date": summary.n_planned.get("skip", 0),
        "ok": summary.n_ok,
        "failed": summary.n_failed,
    }
    row = run_row(
        ctx,
        started_at=started_at,
        state=state,
        config_hash=config_hash(cfg),
        config_path=config_path.relative_to(ctx.store).as_posix(),
        counts=counts,
    )
    write_table(
        ctx.store,
        "runs",
        table_from_rows("runs", [row]),
        partition={"cohort": ctx.cohort, "model_key": ctx.model_key},
        file_key=ctx.run_id,
    )
