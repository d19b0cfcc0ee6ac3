"""Run the measuring job on Dask: every participant-visit through its stages (`participant`),
the rows written in fixed batches; the caller discovers the inputs (`mrcohort.cohort.discover`)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from mrcohort.cohort import ParticipantVisit, Rejected
from mrcohort.errors import MrcohortError
from mrcohort.jobs.clusters.local import LocalClusterSettings, start_local_cluster
from mrcohort.jobs.participant import (
    JobConfig,
    ParticipantResult,
    job_failure_row,
    process_participant,
)
from mrcohort.schemas.conform import table_from_rows
from mrcohort.schemas.rows import failure_row
from mrcohort.schemas.store import write_table
from mrcohort.segmentation.model import load_model_folder, model_key


@dataclass
class RunSummary:
    """What a job did: participant-visits submitted, how many succeeded, the failure rows
    (rejected inputs included) and the files written."""

    n_visits: int = 0
    n_ok: int = 0
    failures: list[dict[str, object]] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    model_key: str = ""

    @property
    def n_failed(self) -> int:
        return len(self.failures)


def rejected_row(cfg: JobConfig, rej: Rejected) -> dict[str, object]:
    """A ``failures`` row for an input that discovery rejected (participant_id stays ""
    when discovery could not read one safely, see docs/failures.md)."""
    return failure_row(
        rej,
        cohort=cfg.cohort,
        participant_id=rej.participant_id,
        visit=rej.visit,
        source=rej.source.name,
        input_sha256=None,
        params_hash=cfg.measure.params_hash(),
        model_key=cfg.model_key,
    )


def resolve_model_key(cfg: JobConfig) -> JobConfig:
    """Fill ``cfg.model_key`` from the model folder's content (validates the folder)."""
    folder = load_model_folder(cfg.model, cfg.inference.folds)
    return replace(cfg, model_key=model_key(folder, cfg.inference))


def input_id(entry: ParticipantVisit | Rejected) -> str:
    """Stable identity of a participant-visit or rejected input (layout, participant, visit,
    source): what batch membership is planned on."""
    if isinstance(entry, Rejected):
        return f"rejected|{entry.participant_id}|{entry.visit or ''}|{entry.source}"
    return f"{entry.layout}|{entry.participant_id}|{entry.visit}|{entry.source}"


def plan_batches(ids: Iterable[str], batch_size: int) -> list[list[str]]:
    """Fixed batch membership from the sorted ids, so a re-run writes the same files (keys)
    whatever order the participants finish in."""
    ordered = sorted(set(ids))
    return [ordered[i : i + batch_size] for i in range(0, len(ordered), batch_size)]


def batch_file_key(cfg: JobConfig, members: list[str]) -> str:
    """Deterministic file name of one batch (cohort, model and its members)."""
    h = hashlib.sha256(f"{cfg.cohort}|{cfg.model_key}\n".encode())
    for m in members:
        h.update(f"{m}\n".encode())
    return h.hexdigest()[:16]


def write_batch(cfg: JobConfig, results: list[ParticipantResult], key: str) -> list[Path]:
    """Write one batch of results: one file per non-empty table, same deterministic key."""
    partition = {"cohort": cfg.cohort, "model_key": cfg.model_key}
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
    pvs: list[ParticipantVisit],
    *,
    rejected: Iterable[Rejected] = (),
    cluster: LocalClusterSettings | None = None,
    client: object | None = None,
    batch_size: int = 500,
    on_progress: Callable[[ParticipantResult], None] | None = None,
) -> RunSummary:
    """Process every participant-visit on Dask and write the tables in batches of
    ``batch_size``.

    Uses ``client`` if given (any Dask cluster: SLURM, PBS, ...), else starts the embedded
    LocalCluster. Inputs that discovery rejected (``rejected``) become failure
    rows; so does a participant whose worker died (``KilledWorker``). Batch membership is
    fixed up front from the sorted inputs and a batch is written once all its members are
    done, so a re-run replaces its files instead of adding rows twice.
    """
    from dask.base import tokenize
    from distributed import Client, as_completed

    if not cfg.model_key:
        cfg = resolve_model_key(cfg)
    rejected = list(rejected)
    summary = RunSummary(n_visits=len(pvs), model_key=cfg.model_key)
    batches = plan_batches([input_id(x) for x in [*pvs, *rejected]], batch_size)
    batch_of = {m: b for b, members in enumerate(batches) for m in members}
    done: dict[int, list[ParticipantResult]] = {}

    def collect(ident: str, result: ParticipantResult) -> None:
        if result.failure is None:
            summary.n_ok += 1
        else:
            summary.failures.append(result.failure)
        if on_progress:
            on_progress(result)
        b = batch_of[ident]
        done.setdefault(b, []).append(result)
        if len(done[b]) == len(batches[b]):
            summary.files.extend(write_batch(cfg, done.pop(b), batch_file_key(cfg, batches[b])))

    for rej in rejected:
        row = rejected_row(cfg, rej)
        collect(input_id(rej), ParticipantResult(rej.participant_id, rej.visit or "", failure=row))

    own_cluster = None
    try:
        if client is None:
            own_cluster = start_local_cluster(cluster or LocalClusterSettings())
            client = Client(own_cluster)
        futures = {
            client.submit(  # type: ignore[attr-defined]
                process_participant,
                pv,
                cfg,
                pure=False,
                key=f"participant-{tokenize(input_id(pv), cfg)}",
            ): pv
            for pv in pvs
        }
        for fut in as_completed(futures):
            pv = futures.pop(fut)
            try:
                result = fut.result()
            except Exception as exc:  # KilledWorker, lost worker, cancelled
                err = MrcohortError("WORKER_LOST", f"{type(exc).__name__}: {exc}", stage="segment")
                result = ParticipantResult(
                    pv.participant_id, pv.visit, failure=job_failure_row(cfg, pv, err, None)
                )
            fut.release()  # results are small, but a cohort has many: free them as they land
            collect(input_id(pv), result)
    finally:
        if own_cluster is not None:
            if client is not None:
                client.close()  # type: ignore[attr-defined]
            own_cluster.close()
    return summary
