"""Cohort jobs: the cohort job (`run`: plan from the `ledger`, then every participant-visit
with work through `participant`'s stages on Dask, rows saved by `flush` as they land;
`records` builds the job's rows, `accounting` checks at the end that every input is in the
store exactly once, `lock` guards a store, `progress` and `status` show a run)
and the ingest job (`scans`: discover and read a cohort, write ``scans`` and ``failures``);
`clusters` holds the Dask backends.

The names below are imported on first use: the job modules pull in torch, Dask and the
biomarkers, which ``import mrcohort.jobs`` alone should not.
"""

from __future__ import annotations

import importlib

#: Public name -> module of this package that defines it.
_EXPORTS = {
    "AccountingError": "accounting",
    "IngestSummary": "scans",
    "LocalClusterSettings": "clusters.local",
    "ParticipantResult": "participant",
    "RunSummary": "run",
    "WorkContext": "participant",
    "ingest": "scans",
    "process_participant": "participant",
    "run_job": "run",
    "segmentation_path": "participant",
    "work_context": "run",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> object:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
