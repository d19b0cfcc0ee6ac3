"""Cohort jobs: the ingest job (`scans`: discover and read a cohort, write ``scans`` and
``failures``) and the measuring job (`run`: every participant-visit through `participant`'s
stages on Dask, tables written in fixed batches); `clusters` holds the Dask backends.

The names below are imported on first use: the job modules pull in torch, Dask and the
biomarkers, which ``import mrcohort.jobs`` alone should not.
"""

from __future__ import annotations

import importlib

#: Public name -> module of this package that defines it.
_EXPORTS = {
    "IngestSummary": "scans",
    "JobConfig": "participant",
    "LocalClusterSettings": "clusters.local",
    "MeasureParams": "participant",
    "ParticipantResult": "participant",
    "RunSummary": "run",
    "ingest": "scans",
    "process_participant": "participant",
    "resolve_model_key": "run",
    "run_cohort": "run",
    "segmentation_path": "participant",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> object:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
