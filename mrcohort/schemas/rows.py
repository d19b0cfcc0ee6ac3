"""Row builders shared by every writer: the provenance columns and the ``failures`` row.

Every table row ends with the same provenance columns (``input_sha256``, ``model_key``,
``code_version``, ``params_hash``, ``computed_at``; ``schema_version`` is filled when the
table is built), and every failure of a participant-visit — rejected by discovery, failed
while reading, stitching, segmenting or measuring — becomes one row built here.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol

from mrcohort import __version__

__all__ = [
    "NO_MEASURE_KEY",
    "NO_MODEL_KEY",
    "CodedFailure",
    "failure_row",
    "provenance",
    "utc_now",
]

#: ``model_key`` partition value of rows written before any model runs (scans, ingest
#: failures).
NO_MODEL_KEY = "none"
#: ``measure_key`` of rows no measurement made (scans, ingest-only failures).
NO_MEASURE_KEY = "none"


class CodedFailure(Protocol):
    """What a failure row needs of an error: :class:`~mrcohort.errors.MrcohortError` or a
    :class:`~mrcohort.cohort.records.Rejected` input."""

    code: str
    message: str
    stage: str


def utc_now() -> dt.datetime:
    """The current time in UTC (``computed_at``)."""
    return dt.datetime.now(dt.timezone.utc)


def provenance(
    *,
    input_sha256: str | None,
    params_hash: str,
    model_key: str = NO_MODEL_KEY,
    measure_key: str = NO_MEASURE_KEY,
    run_id: str | None = None,
    now: dt.datetime | None = None,
) -> dict[str, object]:
    """The provenance columns of one row (``schema_version`` is added by the table builder)."""
    return {
        "input_sha256": input_sha256,
        "model_key": model_key,
        "measure_key": measure_key,
        "code_version": __version__,
        "params_hash": params_hash,
        "computed_at": now or utc_now(),
        "run_id": run_id,
    }


def failure_row(
    err: CodedFailure,
    *,
    cohort: str,
    participant_id: str,
    visit: str | None,
    source: str | None,
    input_sha256: str | None,
    params_hash: str,
    slot: str | None = None,
    model_key: str = NO_MODEL_KEY,
    measure_key: str = NO_MEASURE_KEY,
    run_id: str | None = None,
    now: dt.datetime | None = None,
) -> dict[str, object]:
    """One ``failures`` row; ``model_key`` is ``none`` when nothing was to be segmented
    (ingest) and the job's model otherwise. ``slot`` defaults to ``participant_id/visit``,
    else ``source:<source>``."""
    if slot is None:
        slot = f"{participant_id}/{visit}" if participant_id and visit else f"source:{source}"
    return {
        "cohort": cohort,
        "participant_id": participant_id,
        "visit": visit,
        "stage": err.stage,
        "code": err.code,
        "message": err.message,
        "slot": slot,
        "source": source,
        **provenance(
            input_sha256=input_sha256,
            params_hash=params_hash,
            model_key=model_key,
            measure_key=measure_key,
            run_id=run_id,
            now=now,
        ),
    }
