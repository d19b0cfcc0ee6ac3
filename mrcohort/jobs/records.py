"""The job's rows: one ``ledger`` row per input and attempt, the ``failures`` row of an input,
and the ``runs`` row of a run (columns declared in `mrcohort.schemas.run_tables`)."""

from __future__ import annotations

import datetime as dt
import os
import platform
import secrets
import socket
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

from mrcohort.errors import ENVIRONMENT_CODES, MrcohortError
from mrcohort.jobs.ledger import Action, WorkItem
from mrcohort.schemas.rows import CodedFailure, failure_row, provenance, utc_now
from mrcohort.schemas.run_tables import STAGE_SECONDS

if TYPE_CHECKING:
    from mrcohort.jobs.participant import WorkContext

__all__ = [
    "ledger_row",
    "library_versions",
    "new_run_id",
    "rejected_rows",
    "run_row",
    "work_failure_row",
]


def _identity(item: WorkItem) -> dict[str, object]:
    """participant_id, visit, layout and source of an item (participant-visit or rejected)."""
    if item.pv is not None:
        pv = item.pv
        return {
            "participant_id": pv.participant_id,
            "visit": pv.visit,
            "layout": pv.layout,
            "source": pv.relative_source,
        }
    rej = item.rejected
    assert rej is not None
    return {
        "participant_id": rej.participant_id,
        "visit": rej.visit,
        "layout": "",
        "source": item.source,
    }


def work_failure_row(
    ctx: WorkContext, item: WorkItem, err: CodedFailure, input_sha256: str | None
) -> dict[str, object]:
    """The ``failures`` row of one input under the job's keys."""
    ident = _identity(item)
    return failure_row(
        err,
        cohort=ctx.cohort,
        participant_id=str(ident["participant_id"]),
        visit=ident["visit"],  # type: ignore[arg-type]
        source=ident["source"],  # type: ignore[arg-type]
        input_sha256=input_sha256,
        params_hash=ctx.measure.params_hash(),
        slot=item.slot,
        model_key=ctx.model_key,
        measure_key=ctx.measure_key,
        run_id=ctx.run_id,
    )


def ledger_row(
    ctx: WorkContext,
    item: WorkItem,
    *,
    input_sha256: str | None,
    segmentation_sha256: str | None,
    err: CodedFailure | None,
    wrote_scans: bool,
    seconds: Mapping[str, float],
    worker: str | None,
    action: str | None = None,
) -> dict[str, object]:
    """One ``ledger`` row (``flush_id`` and ``seconds_write`` are set by the flush);
    ``action``: what was done, when not the planned action (``unchanged``: the input hashed
    to what this slot already measured; ``segment``: a measure-only item whose stored
    segmentation was missing or damaged)."""
    ident = _identity(item)
    layout = ident["layout"] or ctx.layout
    planned = Action.REJECT if item.rejected is not None else item.action
    return {
        "cohort": ctx.cohort,
        **ident,
        "layout": layout,
        "slot": item.slot,
        "fingerprint": item.fingerprint,
        "action": action or planned.value,
        "outcome": "ok" if err is None else "failed",
        "stage": None if err is None else err.stage,
        "code": None if err is None else err.code,
        "retryable": err is not None and err.code in ENVIRONMENT_CODES,
        "segmentation_sha256": segmentation_sha256,
        "wrote_scans": wrote_scans,
        "flush_id": "",
        **{f"seconds_{s}": seconds.get(s) for s in STAGE_SECONDS},
        "worker": worker,
        **provenance(
            input_sha256=input_sha256,
            params_hash=ctx.measure.params_hash(),
            model_key=ctx.model_key,
            measure_key=ctx.measure_key,
            run_id=ctx.run_id,
        ),
    }


def rejected_rows(ctx: WorkContext, item: WorkItem) -> tuple[dict[str, object], dict[str, object]]:
    """The failures row and the ledger row of an input discovery rejected."""
    rej = item.rejected
    assert rej is not None, "rejected_rows needs a rejected input"
    failure = work_failure_row(ctx, item, rej, None)
    row = ledger_row(
        ctx,
        item,
        input_sha256=None,
        segmentation_sha256=None,
        err=rej,
        wrote_scans=False,
        seconds={},
        worker=None,
    )
    return failure, row


def lost_worker_error(exc: BaseException) -> MrcohortError:
    """The error of an input whose worker died (walltime, out of memory, node lost)."""
    first = str(exc).splitlines()[0] if str(exc) else ""
    return MrcohortError("WORKER_LOST", f"{type(exc).__name__}: {first}", stage="worker")


def library_versions() -> dict[str, str | None]:
    """Versions recorded in the ``runs`` table (not part of any key)."""

    def of(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    return {
        "python_version": platform.python_version(),
        "torch_version": of("torch"),
        "nnunetv2_version": of("nnunetv2"),
        "dask_version": of("dask"),
    }


def run_row(
    ctx: WorkContext,
    *,
    started_at: dt.datetime,
    state: str,
    config_hash: str,
    config_path: str,
    counts: Mapping[str, int],
) -> dict[str, object]:
    """The ``runs`` row of one run."""
    return {
        "cohort": ctx.cohort,
        "started_at": started_at,
        "finished_at": utc_now(),
        "state": state,
        "config_hash": config_hash,
        "config_path": config_path,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        **{f"n_{k}": int(v) for k, v in counts.items()},
        **library_versions(),
        **provenance(
            input_sha256=None,
            params_hash=ctx.measure.params_hash(),
            model_key=ctx.model_key,
            measure_key=ctx.measure_key,
            run_id=ctx.run_id,
        ),
    }


def new_run_id() -> str:
    """``<UTC time>-<random>``, sortable by start time, e.g. ``20261201T154500Z-1a2b3c``."""
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{now}-{secrets.token_hex(3)}"
