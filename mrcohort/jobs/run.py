"""Run a cohort job on Dask: discover → process every participant → write the tables."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from mrcohort.cohort.ingest import discover
from mrcohort.cohort.records import Discovery, Rejected, ScanGroup
from mrcohort.errors import MrcohortError
from mrcohort.jobs.local import LocalClusterSettings, start_local_cluster
from mrcohort.jobs.pipeline import (
    JobConfig,
    ParticipantResult,
    failure_row,
    process_participant,
)
from mrcohort.schemas.store import write_table
from mrcohort.schemas.tables import table_from_rows
from mrcohort.segmentation.model import load_model_folder, model_key


@dataclass
class RunSummary:
    """What a job did."""

    n_tasks: int = 0
    n_ok: int = 0
    failures: list[dict[str, object]] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    model_key: str = ""

    @property
    def n_failed(self) -> int:
        return len(self.failures)


def discover_tasks(layout: str, source: Path) -> Discovery:
    """Participant-visits of a cohort in any layout (``ukbb``, ``nako``, ``manifest``), plus
    the inputs that cannot be processed, each with its failure code."""
    return discover(layout, source)


def rejected_row(cfg: JobConfig, rej: Rejected) -> dict[str, object]:
    """A ``failures`` row for an input that discovery rejected."""
    err = MrcohortError(rej.code, rej.message, stage=rej.stage)
    # participant_id stays "" when discovery could not read one safely (see docs/failures.md)
    group = ScanGroup("unknown", rej.participant_id, rej.visit or "", rej.source, rej.source.parent)
    row = failure_row(cfg, group, err, None)
    row["visit"] = rej.visit
    return row


def resolve_model_key(cfg: JobConfig) -> JobConfig:
    """Fill ``cfg.model_key`` from the model folder's content (validates the folder)."""
    folder = load_model_folder(cfg.model, cfg.inference.folds)
    return replace(cfg, model_key=model_key(folder, cfg.inference))


def _file_key(results: Iterable[ParticipantResult], model: str) -> str:
    h = hashlib.sha256(model.encode())
    for r in sorted(results, key=lambda r: (r.participant_id, r.visit)):
        h.update(f"{r.participant_id}/{r.visit}\n".encode())
    return h.hexdigest()[:16]


def write_batch(cfg: JobConfig, results: list[ParticipantResult]) -> list[Path]:
    """Write one batch of results: one file per non-empty table, same deterministic key."""
    partition = {"cohort": cfg.cohort, "model_key": cfg.model_key}
    key = _file_key(results, cfg.model_key)
    tables = {
        "organ_metrics": [row for r in results for row in r.organ_rows],
        "vessel_metrics": [row for r in results for row in r.vessel_rows],
        "qc": [row for r in results for row in r.qc_rows],
        "failures": [r.failure for r in results if r.failure is not None],
    }
    files = []
    for name, rows in tables.items():
        if rows:
            table = table_from_rows(name, rows)
            files.append(write_table(cfg.store, name, table, partition=partition, file_key=key))
    return files


def run_cohort(
    cfg: JobConfig,
    tasks: list[ScanGroup],
    *,
    rejected: Iterable[Rejected] = (),
    cluster: LocalClusterSettings | None = None,
    client: object | None = None,
    batch_size: int = 500,
    on_progress: Callable[[ParticipantResult], None] | None = None,
) -> RunSummary:
    """Process every task on Dask and write the tables in batches of ``batch_size``.

    Uses ``client`` if given (any Dask cluster: SLURM, PBS, ...), else starts the embedded
    LocalCluster. Files that could not be turned into a task (``rejected``) become failure
    rows. A worker that dies on a participant (``KilledWorker``) becomes a failure row too.
    """
    from distributed import Client, as_completed

    if not cfg.model_key:
        cfg = resolve_model_key(cfg)
    summary = RunSummary(n_tasks=len(tasks), model_key=cfg.model_key)
    pending: list[ParticipantResult] = []

    def collect(result: ParticipantResult) -> None:
        pending.append(result)
        if result.failure is None:
            summary.n_ok += 1
        else:
            summary.failures.append(result.failure)
        if on_progress:
            on_progress(result)
        if len(pending) >= batch_size:
            summary.files.extend(write_batch(cfg, pending))
            pending.clear()

    for rej in rejected:
        collect(
            ParticipantResult(rej.participant_id, rej.visit or "", failure=rejected_row(cfg, rej))
        )

    own_cluster = None
    if client is None:
        own_cluster = start_local_cluster(cluster or LocalClusterSettings())
        client = Client(own_cluster)
    try:
        futures = {
            client.submit(
                process_participant,
                t,
                cfg,
                pure=False,  # type: ignore[attr-defined]
                key=f"participant-{t.participant_id}-{t.visit}",
            ): t
            for t in tasks
        }
        for fut in as_completed(futures):
            task = futures[fut]
            try:
                result = fut.result()
            except Exception as exc:  # KilledWorker, lost worker, cancelled
                err = MrcohortError("WORKER_LOST", f"{type(exc).__name__}: {exc}", stage="segment")
                result = ParticipantResult(
                    task.participant_id, task.visit, failure=failure_row(cfg, task, err, None)
                )
            collect(result)
    finally:
        if own_cluster is not None:
            client.close()  # type: ignore[attr-defined]
            own_cluster.close()
    if pending:
        summary.files.extend(write_batch(cfg, pending))
    return summary
