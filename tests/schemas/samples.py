"""Rows of the published tables built from real biomarker records, for the schema tests."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from typing import Any

import numpy as np

from mrcohort.biomarkers.fat_fraction import fat_fraction_stats
from mrcohort.biomarkers.participant import measure_participant
from mrcohort.biomarkers.volume import label_volumes
from mrcohort.errors import IngestError
from mrcohort.labels import MRSEG_LABEL_MAP
from mrcohort.schemas import rows

NOW = dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.timezone.utc)
PART = {"cohort": "ukbb", "model_key": "mrseg-abc123"}
KEYS = {"cohort": "ukbb", "visit": "2", "sequence": "dixon"}


def provenance(**over: Any) -> dict[str, Any]:
    """The provenance columns of one row (schema_version left to the table builder)."""
    row = rows.provenance(
        input_sha256="0" * 64, params_hash="p" * 16, model_key=PART["model_key"], now=NOW
    )
    return {**row, **over}


def organ_rows(participant_id: str = "1000001") -> list[dict[str, Any]]:
    """Three ``organ_metrics`` rows (liver, a muscle, an absent label) on a tiny label map."""
    labels = np.zeros((6, 8, 8), dtype=np.uint8)
    labels[1:5, 1:7, 1:4] = 5
    labels[1:5, 1:7, 4:7] = 33
    fat = np.full(labels.shape, 10.0)
    water = np.full(labels.shape, 90.0)
    spacing = (3.0, 2.0, 2.0)
    ids = [5, 33, 40]
    vols = label_volumes(labels, spacing_mm=spacing, label_ids=ids)
    ffs = fat_fraction_stats(labels, fat=fat, water=water, spacing_mm=spacing, label_ids=ids)
    return [
        {
            **KEYS,
            "participant_id": participant_id,
            "label_group": MRSEG_LABEL_MAP[vol.label_id].group.value,
            **asdict(vol),
            **asdict(ff),
            **provenance(),
        }
        for vol, ff in zip(vols, ffs, strict=True)
    ]


def failure_row(**over: Any) -> dict[str, Any]:
    """One ``failures`` row of an ingest failure (no visit, no input hash)."""
    row = rows.failure_row(
        IngestError("ZIP_INCOMPLETE", "22 of 24 series"),
        cohort="ukbb",
        participant_id="1000002",
        visit=None,
        source="1000002_20201_2_0.zip",
        input_sha256=None,
        params_hash="p" * 16,
        model_key=PART["model_key"],
        now=NOW,
    )
    return {**row, **over}


def measure_rows() -> dict[str, list[dict[str, Any]]]:
    """``organ_metrics``, ``vessel_metrics`` and ``qc`` rows of an aorta in two pieces."""
    labels = np.zeros((20, 12, 12), dtype=np.uint8)
    labels[2:8, 4:8, 4:8] = labels[12:18, 4:8, 4:8] = MRSEG_LABEL_MAP.id_of("aorta")
    measured = measure_participant(labels, spacing_mm=(3.0, 2.0, 2.0)).rows()
    keys = {**KEYS, "participant_id": "1000001"}
    return {name: [{**keys, **r, **provenance()} for r in measured[name]] for name in measured}
