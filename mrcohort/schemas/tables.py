"""Versioned Arrow schemas of the published tables: ``organ_metrics``, ``failures``,
``scans``, ``vessel_metrics`` and ``qc`` (plus the job's ``ledger`` and ``runs``, declared in
`mrcohort.schemas.run_tables`).

Each table is one list of `mrcohort.schemas.columns.field` declarations (name, type, unit,
description, nullability) framed by the shared key and provenance column groups. Float NaN
is stored as null (not measured / undefined), so SQL aggregates skip it. Rows become
conforming tables with `table_from_rows` (`mrcohort.schemas.conform`).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import pyarrow as pa

from mrcohort.schemas.columns import (
    SCHEMA_VERSION,
    declare_table,
    field,
    geometry_fields,
    label_key_fields,
    provenance_fields,
    scan_key_fields,
)
from mrcohort.schemas.run_tables import LEDGER, MODELS, RUNS

__all__ = [
    "FAILURES",
    "LEDGER",
    "ORGAN_METRICS",
    "PARTITION_KEYS",
    "QC",
    "RUNS",
    "SCANS",
    "SCHEMAS",
    "SCHEMA_VERSION",
    "VESSEL_METRICS",
    "empty_table",
    "schema",
]

#: Hive partition columns of every table, in path order.
PARTITION_KEYS: tuple[str, ...] = ("cohort", "model_key")

_STR, _BOOL, _F64 = pa.string(), pa.bool_(), pa.float64()
_I16, _I32, _I64 = pa.int16(), pa.int32(), pa.int64()


_FF = "Dixon fat fraction (not PDFF) of the eroded label mask; null if not measured"

#: One row per participant x visit x sequence x label.
ORGAN_METRICS: pa.Schema = declare_table(
    "organ_metrics",
    [
        *label_key_fields(),
        field(
            "label_group", _STR, "", "anatomical group: organ, vessel, muscle, bone, adipose, other"
        ),
        field("n_vox", _I64, "{voxel}", "number of voxels carrying the label"),
        field(
            "volume_ml", _F64, "ml", "label volume: voxel count x voxel volume (1 ml = 1000 mm3)"
        ),
        field("is_empty", _BOOL, "", "true when the label has no voxel"),
        field(
            "touches_border",
            _BOOL,
            "",
            "label reaches the field-of-view border: possibly truncated",
        ),
        field("ff_median", _F64, "1", f"median {_FF}", nullable=True),
        field("ff_mean", _F64, "1", f"mean {_FF}", nullable=True),
        field("ff_p25", _F64, "1", f"25th percentile {_FF}", nullable=True),
        field("ff_p75", _F64, "1", f"75th percentile {_FF}", nullable=True),
        field(
            "ff_n_vox",
            _I64,
            "{voxel}",
            "voxels the fat fraction statistics were computed on",
            nullable=True,
        ),
        field(
            "ff_erosion_mm",
            _F64,
            "mm",
            "erosion distance of the label mask before measuring fat fraction",
            nullable=True,
        ),
        field(
            "ff_erosion_fallback",
            _BOOL,
            "",
            "erosion left too few voxels; the un-eroded mask was used",
            nullable=True,
        ),
        field(
            "swap_suspected",
            _BOOL,
            "",
            "fat-water swap? liver, spleen or muscle with median FF > 0.5, or "
            "adipose tissue with median FF < 0.5",
            nullable=True,
        ),
        *provenance_fields(),
    ],
    description=(
        "One row per participant x visit x sequence x label: volume and Dixon fat fraction."
    ),
)

#: One row per failed scan and stage.
FAILURES: pa.Schema = declare_table(
    "failures",
    [
        *scan_key_fields(visit_nullable=True),
        field(
            "stage", _STR, "", "pipeline stage that failed: ingest, stitch, segment, measure, write"
        ),
        field("code", _STR, "", "stable UPPER_SNAKE failure code (docs/failures.md)"),
        field("message", _STR, "", "one human-readable line"),
        field(
            "slot",
            _STR,
            "",
            "identity of the input (as in the ledger): 'participant_id/visit', or "
            "'source:<path>' for an input discovery could not name",
        ),
        field(
            "source", _STR, "", "input that failed (file or archive name), if known", nullable=True
        ),
        *provenance_fields(input_nullable=True),
    ],
    description=(
        "One row per participant-visit input that could not be processed (per model and "
        "measurement version): stage, code, message."
    ),
)

#: One row per participant x visit x sequence x channel x station found by ingest.
#: Nothing from DICOM headers that identifies a person (no names, dates, free text).
SCANS: pa.Schema = declare_table(
    "scans",
    [
        *scan_key_fields(),
        field(
            "sequence",
            _STR,
            "",
            "image sequence: dixon, t2haste, ct, other (as the layout maps it)",
        ),
        field(
            "channel",
            _STR,
            "",
            "channel: in, opp, w, f for Dixon; e.g. t2, ct for one-channel data",
        ),
        field("station", _I16, "", "station number, 1 = lowest along the body axis (by position)"),
        field(
            "n_stations",
            _I16,
            "{station}",
            "stations found for this participant, visit, sequence and channel",
        ),
        field(
            "stations_expected",
            _I16,
            "{station}",
            "stations of a complete acquisition in this layout; null if unknown",
            nullable=True,
        ),
        field("layout", _STR, "", "input layout: ukbb, nako, manifest"),
        field(
            "source", _STR, "", "zip, file or DICOM series folder, relative to the ingest source"
        ),
        field("format", _STR, "", "file format: dicom, nifti, mha, nrrd"),
        field(
            "series_number",
            _I32,
            "",
            "DICOM SeriesNumber (0020,0011); null for other formats",
            nullable=True,
        ),
        field(
            "modality",
            _STR,
            "",
            "DICOM Modality (0008,0060), e.g. MR, CT; null for other formats",
            nullable=True,
        ),
        field(
            "content_sha256",
            _STR,
            "",
            "sha256 of the station's input: the file's bytes, or for a DICOM "
            "series the sha256 of its per-slice-file sha256 lines in slice order",
        ),
        *geometry_fields(),
        field("usable", _BOOL, "", "the sequence passed every ingest check and can be stitched"),
        field(
            "problem_code",
            _STR,
            "",
            "failure code that makes the sequence unusable (see failures)",
            nullable=True,
        ),
        *provenance_fields(),
    ],
    description=(
        "One row per participant x visit x sequence x channel x station found by ingest: "
        "geometry and content hash; nothing from DICOM headers that identifies a person (no "
        "names, dates, free text)."
    ),
)

_TI = "of the largest component's smoothed centreline; null unless tortuosity_status is ok"

#: One row per participant x visit x sequence x vessel (the 7 vessel labels 13-19).
#: Tortuosity columns are filled for the iliac arteries (16, 17) only.
VESSEL_METRICS: pa.Schema = declare_table(
    "vessel_metrics",
    [
        *label_key_fields(),
        field(
            "n_components_26", _I32, "{component}", "26-connected components of at least dust_mm3"
        ),
        field("n_components_6", _I32, "{component}", "6-connected components of at least dust_mm3"),
        field(
            "n_dust_components_26",
            _I32,
            "{component}",
            "26-connected components smaller than dust_mm3",
        ),
        field(
            "n_dust_components_6",
            _I32,
            "{component}",
            "6-connected components smaller than dust_mm3",
        ),
        field(
            "is_single_component",
            _BOOL,
            "",
            "exactly one 26-connected component of at least dust_mm3 (vessel consistency)",
        ),
        field(
            "largest_component_fraction",
            _F64,
            "1",
            "voxels of the largest 26-connected component / all voxels of the label; null if empty",
            nullable=True,
        ),
        field("dust_mm3", _F64, "mm3", "components below this volume (exclusive) count as dust"),
        field(
            "tortuosity_status",
            _STR,
            "",
            "ok, empty, no_path (skeleton without two ends) or too_short; "
            "null for vessels whose tortuosity is not measured",
            nullable=True,
        ),
        field("centerline_length_mm", _F64, "mm", f"length L {_TI}", nullable=True),
        field(
            "chord_length_mm", _F64, "mm", f"distance D between the end points {_TI}", nullable=True
        ),
        field("tortuosity_index", _F64, "1", f"TI = L / D {_TI}", nullable=True),
        field(
            "soam_rad_per_mm",
            _F64,
            "rad/mm",
            f"sum-of-angles metric (Bullitt 2003) {_TI}",
            nullable=True,
        ),
        field(
            "centerline_length_raw_mm",
            _F64,
            "mm",
            "length of the unsmoothed skeleton path (overestimates L)",
            nullable=True,
        ),
        field(
            "tortuosity_index_raw",
            _F64,
            "1",
            "TI of the unsmoothed skeleton path (overestimates TI)",
            nullable=True,
        ),
        field(
            "tortuosity_n_components",
            _I32,
            "{component}",
            "26-connected components of the label (any size) seen by the tortuosity step",
            nullable=True,
        ),
        field(
            "tortuosity_largest_component_only",
            _BOOL,
            "",
            "the label had several components; only the largest was measured",
            nullable=True,
        ),
        *provenance_fields(),
    ],
    description=(
        "One row per participant x visit x sequence x vessel (the 7 vessel labels 13-19): "
        "connectivity; tortuosity for the iliac arteries (16, 17) only."
    ),
)

#: One row per participant x visit x sequence x label: quality-control flags.
QC: pa.Schema = declare_table(
    "qc",
    [
        *label_key_fields(),
        field("expected", _BOOL, "", "the label is in the expected set"),
        field("present", _BOOL, "", "the label has at least one voxel"),
        field("missing", _BOOL, "", "expected but not present"),
        field("volume_ml", _F64, "ml", "label volume"),
        field(
            "volume_min_ml",
            _F64,
            "ml",
            "lower end of the plausible volume range (inclusive); null if not checked",
            nullable=True,
        ),
        field(
            "volume_max_ml",
            _F64,
            "ml",
            "upper end of the plausible volume range (inclusive); null if not checked",
            nullable=True,
        ),
        field("implausible_volume", _BOOL, "", "present with a volume outside the plausible range"),
        field(
            "truncated",
            _BOOL,
            "",
            "present and touching the field-of-view border: possibly cut off",
        ),
        field(
            "swap_suspected",
            _BOOL,
            "",
            "liver, spleen or muscle with median Dixon fat fraction > 0.5, or adipose "
            "tissue with median < 0.5; null without Dixon images",
            nullable=True,
        ),
        field(
            "fragmented",
            _BOOL,
            "",
            "vessel not a single 26-connected component; null for non-vessels",
            nullable=True,
        ),
        field(
            "qc_flags",
            _STR,
            "",
            "raised flags, comma-separated: missing, implausible_volume, truncated, "
            "swap_suspected, fragmented; empty if none",
        ),
        field("qc_pass", _BOOL, "", "no QC flag raised"),
        field(
            "picture_path",
            _STR,
            "",
            "QC picture of the participant-visit (PNG), path relative to the store root; "
            "null when pictures are off or it could not be drawn",
            nullable=True,
        ),
        *provenance_fields(),
    ],
    description=("One row per participant x visit x sequence x label: quality-control flags."),
)

#: Table name -> declared schema.
SCHEMAS: Mapping[str, pa.Schema] = MappingProxyType(
    {
        s.metadata[b"mrcohort.table"].decode(): s
        for s in (ORGAN_METRICS, FAILURES, SCANS, VESSEL_METRICS, QC, LEDGER, RUNS, MODELS)
    }
)


def schema(name: str) -> pa.Schema:
    """Declared schema of table ``name``; ``ValueError`` for an unknown name."""
    try:
        return SCHEMAS[name]
    except KeyError:
        raise ValueError(f"unknown table {name!r}; known: {sorted(SCHEMAS)}") from None


def empty_table(name: str) -> pa.Table:
    """Zero-row table of ``name`` with the full declared schema (types, metadata)."""
    return schema(name).empty_table()
