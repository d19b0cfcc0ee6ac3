"""Run a cohort job on Dask: discover → process every participant → write the tables."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from mrcohort.errors import IngestError, MrcohortError
from mrcohort.jobs.local import LocalClusterSettings, start_local_cluster
from mrcohort.jobs.pipeline import (
    JobConfig,
    ParticipantResult,
    ParticipantTask,
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


def discover_tasks(source: Path) -> tuple[list[ParticipantTask], list[tuple[Path, str]]]:
    """UK Biobank zips under ``source`` as tasks, plus rejected ``.zip`` files with reasons.

    Other files (truth tables, notes, NIfTI) are not participants and are not reported.
    """
    from mrcohort.cohort.ukbb import discover_ukbb

    found, rejected = discover_ukbb(source)
    tasks = [ParticipantTask(z.participant_id, z.visit, Path(z.path)) for z in found]
    bad_zips = [
        (Path(p), reason)
        for p, reason in rejected
        if Path(p).suffix.lower() == ".zip" and not Path(p).name.startswith(".")
    ]
    return tasks, bad_zips


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
    """Write one batch of results as one organ_metrics and one failures file."""
    partition = {"cohort": cfg.cohort, "model_key": cfg.model_key}
    key = _file_key(results, cfg.model_key)
    files = []
    organ = [row for r in results for row in r.organ_rows]
    fails = [r.failure for r in results if r.failure is not None]
    if organ:
        table = table_from_rows("organ_metrics", organ)
        files.append(
            write_table(cfg.store, "organ_metrics", table, partition=partition, file_key=key)
        )
    if fails:
        files.append(
            write_table(
                cfg.store,
                "failures",
                table_from_rows("failures", fails),
                partition=partition,
                file_key=key,
            )
        )
    return files


def run_cohort(
    cfg: JobConfig,
    tasks: list[ParticipantTask],
    *,
    rejected: Iterable[tuple[Path, str]] = (),
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

    for path, reason in rejected:
        bad = ParticipantTask(path.name.split("_")[0] or path.name, "", path)
        err = IngestError("UNRECOGNISED_FILE", reason)
        collect(ParticipantResult(bad.participant_id, "", failure=failure_row(cfg, bad, err, None)))

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
