"""Versioned Arrow schemas of the published tables, and helpers to build conforming tables.

Every field carries its nullability and metadata ``{"unit": ..., "description": ...}``.
Units: UCUM-style (``ml``, ``mm``, ``1`` for dimensionless fractions, ``{voxel}`` for
voxel counts); ``""`` for identifiers, text, flags and timestamps.

Float NaN is stored as null (not measured / undefined), so SQL aggregates skip it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

#: Version of every schema in this module; bump on any incompatible change.
SCHEMA_VERSION = "1"
#: Hive partition columns of every table, in path order.
PARTITION_KEYS: tuple[str, ...] = ("cohort", "model_key")

_TIMESTAMP = pa.timestamp("us", tz="UTC")


def _field(
    name: str, type_: pa.DataType, *, nullable: bool, unit: str, description: str
) -> pa.Field:
    return pa.field(
        name, type_, nullable=nullable, metadata={"unit": unit, "description": description}
    )


def _provenance(*, input_nullable: bool = False) -> list[pa.Field]:
    """The provenance columns every table ends with."""
    return [
        _field(
            "input_sha256",
            pa.string(),
            nullable=input_nullable,
            unit="",
            description="sha256 (hex) of the input bytes (all stations, in a defined order)",
        ),
        _field(
            "model_key",
            pa.string(),
            nullable=False,
            unit="",
            description="identity of the segmentation model (hash of weights, plans, settings)",
        ),
        _field(
            "code_version",
            pa.string(),
            nullable=False,
            unit="",
            description="mrcohort version that computed the row",
        ),
        _field(
            "params_hash",
            pa.string(),
            nullable=False,
            unit="",
            description="hash of the parameters used to compute the row",
        ),
        _field(
            "schema_version",
            pa.string(),
            nullable=False,
            unit="",
            description="version of this table's schema (mrcohort.schemas.tables.SCHEMA_VERSION)",
        ),
        _field(
            "computed_at",
            _TIMESTAMP,
            nullable=False,
            unit="",
            description="when the row was computed (UTC)",
        ),
    ]


def _scan_keys(*, visit_nullable: bool = False) -> list[pa.Field]:
    return [
        _field(
            "cohort",
            pa.string(),
            nullable=False,
            unit="",
            description="cohort name (hive partition key), e.g. ukbb, nako",
        ),
        _field(
            "participant_id",
            pa.string(),
            nullable=False,
            unit="",
            description="pseudonymous participant id within the cohort ([A-Za-z0-9_-]+)",
        ),
        _field(
            "visit",
            pa.string(),
            nullable=visit_nullable,
            unit="",
            description="visit / instance of the participant, e.g. UK Biobank instance '2'",
        ),
    ]


def _with_metadata(name: str, fields: Sequence[pa.Field]) -> pa.Schema:
    return pa.schema(
        fields,
        metadata={"mrcohort.table": name, "mrcohort.schema_version": SCHEMA_VERSION},
    )


_FF_STAT = "Dixon fat fraction (not PDFF) of the eroded label mask"

#: One row per participant x visit x sequence x label.
ORGAN_METRICS: pa.Schema = _with_metadata(
    "organ_metrics",
    [
        *_scan_keys(),
        _field(
            "sequence",
            pa.string(),
            nullable=False,
            unit="",
            description="image sequence segmented: dixon, t2haste, ct, other",
        ),
        _field(
            "label_id",
            pa.int16(),
            nullable=False,
            unit="",
            description="label id in the model's label map (MRSegmentator 1..40; body comp. 1..10)",
        ),
        _field(
            "label_name",
            pa.string(),
            nullable=False,
            unit="",
            description="label name in the model's label map (its dataset.json)",
        ),
        _field(
            "label_group",
            pa.string(),
            nullable=False,
            unit="",
            description="anatomical group: organ, vessel, muscle, bone, adipose, other",
        ),
        _field(
            "n_vox",
            pa.int64(),
            nullable=False,
            unit="{voxel}",
            description="number of voxels carrying the label",
        ),
        _field(
            "volume_ml",
            pa.float64(),
            nullable=False,
            unit="ml",
            description="label volume: voxel count x voxel volume (1 ml = 1000 mm3)",
        ),
        _field(
            "is_empty",
            pa.bool_(),
            nullable=False,
            unit="",
            description="true when the label has no voxel",
        ),
        _field(
            "touches_border",
            pa.bool_(),
            nullable=False,
            unit="",
            description="label reaches the field-of-view border: possibly truncated",
        ),
        _field(
            "ff_median",
            pa.float64(),
            nullable=True,
            unit="1",
            description=f"median {_FF_STAT}; null if not measured",
        ),
        _field(
            "ff_mean",
            pa.float64(),
            nullable=True,
            unit="1",
            description=f"mean {_FF_STAT}; null if not measured",
        ),
        _field(
            "ff_p25",
            pa.float64(),
            nullable=True,
            unit="1",
            description=f"25th percentile {_FF_STAT}; null if not measured",
        ),
        _field(
            "ff_p75",
            pa.float64(),
            nullable=True,
            unit="1",
            description=f"75th percentile {_FF_STAT}; null if not measured",
        ),
        _field(
            "ff_n_vox",
            pa.int64(),
            nullable=True,
            unit="{voxel}",
            description="voxels the fat fraction statistics were computed on",
        ),
        _field(
            "ff_erosion_mm",
            pa.float64(),
            nullable=True,
            unit="mm",
            description="erosion distance of the label mask before measuring fat fraction",
        ),
        _field(
            "ff_erosion_fallback",
            pa.bool_(),
            nullable=True,
            unit="",
            description="erosion left too few voxels; the un-eroded mask was used",
        ),
        _field(
            "swap_suspected",
            pa.bool_(),
            nullable=True,
            unit="",
            description="fat-water swap? liver, spleen or muscle with median FF > 0.5, or "
            "adipose tissue with median FF < 0.5",
        ),
        *_provenance(),
    ],
)

#: One row per failed scan and stage.
FAILURES: pa.Schema = _with_metadata(
    "failures",
    [
        *_scan_keys(visit_nullable=True),
        _field(
            "stage",
            pa.string(),
            nullable=False,
            unit="",
            description="pipeline stage that failed: ingest, stitch, segment, measure, write",
        ),
        _field(
            "code",
            pa.string(),
            nullable=False,
            unit="",
            description="stable UPPER_SNAKE failure code (docs/failures.md)",
        ),
        _field(
            "message", pa.string(), nullable=False, unit="", description="one human-readable line"
        ),
        _field(
            "source",
            pa.string(),
            nullable=True,
            unit="",
            description="input that failed (file or archive name), if known",
        ),
        *_provenance(input_nullable=True),
    ],
)


def _geometry_fields() -> list[pa.Field]:
    """Voxel grid columns of one image (SimpleITK order x, y, z; world LPS, mm)."""
    fields = []
    for axis in "xyz":
        fields.append(
            _field(
                f"size_{axis}_vox",
                pa.int32(),
                nullable=False,
                unit="{voxel}",
                description=f"number of voxels along image axis {axis} (SimpleITK order)",
            )
        )
    for axis in "xyz":
        fields.append(
            _field(
                f"spacing_{axis}_mm",
                pa.float64(),
                nullable=False,
                unit="mm",
                description=f"voxel spacing along image axis {axis}",
            )
        )
    for axis in "xyz":
        fields.append(
            _field(
                f"origin_{axis}_mm",
                pa.float64(),
                nullable=False,
                unit="mm",
                description=f"world (LPS) {axis} coordinate of the centre of voxel (0, 0, 0)",
            )
        )
    fields.append(
        _field(
            "direction",
            pa.list_(pa.float64(), 9),
            nullable=False,
            unit="1",
            description="direction cosines, row-major 3x3 (SimpleITK GetDirection); "
            "column k is the world direction of image axis k",
        )
    )
    return fields


#: One row per participant x visit x sequence x channel x station found by ingest.
#: Nothing from DICOM headers that identifies a person (no names, dates, free text).
SCANS: pa.Schema = _with_metadata(
    "scans",
    [
        *_scan_keys(),
        _field(
            "sequence",
            pa.string(),
            nullable=False,
            unit="",
            description="image sequence: dixon, t2haste, ct, other (as the layout maps it)",
        ),
        _field(
            "channel",
            pa.string(),
            nullable=False,
            unit="",
            description="channel: in, opp, w, f for Dixon; e.g. t2, ct for one-channel data",
        ),
        _field(
            "station",
            pa.int16(),
            nullable=False,
            unit="",
            description="station number, 1 = lowest along the body axis (by position)",
        ),
        _field(
            "n_stations",
            pa.int16(),
            nullable=False,
            unit="",
            description="stations found for this participant, visit, sequence and channel",
        ),
        _field(
            "stations_expected",
            pa.int16(),
            nullable=True,
            unit="",
            description="stations of a complete acquisition in this layout; null if unknown",
        ),
        _field(
            "layout",
            pa.string(),
            nullable=False,
            unit="",
            description="input layout: ukbb, nako, manifest",
        ),
        _field(
            "source",
            pa.string(),
            nullable=False,
            unit="",
            description="zip, file or DICOM series folder, relative to the ingest source",
        ),
        _field(
            "format",
            pa.string(),
            nullable=False,
            unit="",
            description="file format: dicom, nifti, mha, nrrd",
        ),
        _field(
            "series_number",
            pa.int32(),
            nullable=True,
            unit="",
            description="DICOM SeriesNumber (0020,0011); null for other formats",
        ),
        _field(
            "modality",
            pa.string(),
            nullable=True,
            unit="",
            description="DICOM Modality (0008,0060), e.g. MR, CT; null for other formats",
        ),
        _field(
            "content_sha256",
            pa.string(),
            nullable=False,
            unit="",
            description="sha256 of the station's input: the file's bytes, or for a DICOM "
            "series the sha256 of its per-slice-file sha256 lines in slice order",
        ),
        *_geometry_fields(),
        _field(
            "usable",
            pa.bool_(),
            nullable=False,
            unit="",
            description="the sequence passed every ingest check and can be stitched",
        ),
        _field(
            "problem_code",
            pa.string(),
            nullable=True,
            unit="",
            description="failure code that makes the sequence unusable (see failures)",
        ),
        *_provenance(),
    ],
)


def _label_keys() -> list[pa.Field]:
    """Scan keys, sequence and label columns shared by the per-label measure tables."""
    fields = [
        *_scan_keys(),
        _field(
            "sequence",
            pa.string(),
            nullable=False,
            unit="",
            description="image sequence segmented: dixon, t2haste, ct, other",
        ),
        _field(
            "label_id",
            pa.int16(),
            nullable=False,
            unit="",
            description="label id in the model's label map (MRSegmentator 1..40; body comp. 1..10)",
        ),
        _field(
            "label_name",
            pa.string(),
            nullable=False,
            unit="",
            description="label name in the model's label map (its dataset.json)",
        ),
    ]
    return fields


def _measures(spec: Sequence[tuple[str, pa.DataType, bool, str, str]]) -> list[pa.Field]:
    """Fields from (name, type, nullable, unit, description) tuples."""
    return [_field(n, t, nullable=nul, unit=u, description=d) for n, t, nul, u, d in spec]


_TI = "of the largest component's smoothed centreline; null unless tortuosity_status is ok"

#: One row per participant x visit x sequence x vessel (the 7 vessel labels 13-19).
#: Tortuosity columns are filled for the iliac arteries (16, 17) only.
VESSEL_METRICS: pa.Schema = _with_metadata(
    "vessel_metrics",
    [
        *_label_keys(),
        *_measures(
            [
                (
                    "n_components_26",
                    pa.int32(),
                    False,
                    "{component}",
                    "26-connected components of at least dust_mm3",
                ),
                (
                    "n_components_6",
                    pa.int32(),
                    False,
                    "{component}",
                    "6-connected components of at least dust_mm3",
                ),
                (
                    "n_dust_components_26",
                    pa.int32(),
                    False,
                    "{component}",
                    "26-connected components smaller than dust_mm3",
                ),
                (
                    "n_dust_components_6",
                    pa.int32(),
                    False,
                    "{component}",
                    "6-connected components smaller than dust_mm3",
                ),
                (
                    "is_single_component",
                    pa.bool_(),
                    False,
                    "",
                    "exactly one 26-connected component of at least dust_mm3 (vessel consistency)",
                ),
                (
                    "largest_component_fraction",
                    pa.float64(),
                    True,
                    "1",
                    "voxels of the largest 26-connected component / all voxels of the label; "
                    "null if empty",
                ),
                (
                    "dust_mm3",
                    pa.float64(),
                    False,
                    "mm3",
                    "components below this volume (exclusive) count as dust",
                ),
                (
                    "tortuosity_status",
                    pa.string(),
                    True,
                    "",
                    "ok, empty, no_path (skeleton without two ends) or too_short; "
                    "null for vessels whose tortuosity is not measured",
                ),
                ("centerline_length_mm", pa.float64(), True, "mm", f"length L {_TI}"),
                (
                    "chord_length_mm",
                    pa.float64(),
                    True,
                    "mm",
                    f"distance D between the end points {_TI}",
                ),
                ("tortuosity_index", pa.float64(), True, "1", f"TI = L / D {_TI}"),
                (
                    "soam_rad_per_mm",
                    pa.float64(),
                    True,
                    "rad/mm",
                    f"sum-of-angles metric (Bullitt 2003) {_TI}",
                ),
                (
                    "centerline_length_raw_mm",
                    pa.float64(),
                    True,
                    "mm",
                    "length of the unsmoothed skeleton path (overestimates L)",
                ),
                (
                    "tortuosity_index_raw",
                    pa.float64(),
                    True,
                    "1",
                    "TI of the unsmoothed skeleton path (overestimates TI)",
                ),
                (
                    "tortuosity_n_components",
                    pa.int32(),
                    True,
                    "{component}",
                    "26-connected components of the label (any size) seen by the tortuosity step",
                ),
                (
                    "tortuosity_largest_component_only",
                    pa.bool_(),
                    True,
                    "",
                    "the label had several components; only the largest was measured",
                ),
            ]
        ),
        *_provenance(),
    ],
)

#: One row per participant x visit x sequence x label: quality-control flags.
QC: pa.Schema = _with_metadata(
    "qc",
    [
        *_label_keys(),
        *_measures(
            [
                ("expected", pa.bool_(), False, "", "the label is in the expected set"),
                ("present", pa.bool_(), False, "", "the label has at least one voxel"),
                ("missing", pa.bool_(), False, "", "expected but not present"),
                ("volume_ml", pa.float64(), False, "ml", "label volume"),
                (
                    "volume_min_ml",
                    pa.float64(),
                    True,
                    "ml",
                    "lower end of the plausible volume range (inclusive); null if not checked",
                ),
                (
                    "volume_max_ml",
                    pa.float64(),
                    True,
                    "ml",
                    "upper end of the plausible volume range (inclusive); null if not checked",
                ),
                (
                    "implausible_volume",
                    pa.bool_(),
                    False,
                    "",
                    "present with a volume outside the plausible range",
                ),
                (
                    "truncated",
                    pa.bool_(),
                    False,
                    "",
                    "present and touching the field-of-view border: possibly cut off",
                ),
                (
                    "swap_suspected",
                    pa.bool_(),
                    True,
                    "",
                    "liver, spleen or muscle with median Dixon fat fraction > 0.5, or adipose "
                    "tissue with median < 0.5; null without Dixon images",
                ),
                (
                    "fragmented",
                    pa.bool_(),
                    True,
                    "",
                    "vessel not a single 26-connected component; null for non-vessels",
                ),
                (
                    "qc_flags",
                    pa.string(),
                    False,
                    "",
                    "raised flags, comma-separated: missing, implausible_volume, truncated, "
                    "swap_suspected, fragmented; empty if none",
                ),
                ("qc_pass", pa.bool_(), False, "", "no QC flag raised"),
            ]
        ),
        *_provenance(),
    ],
)

#: Table name -> declared schema.
SCHEMAS: Mapping[str, pa.Schema] = MappingProxyType(
    {
        "organ_metrics": ORGAN_METRICS,
        "failures": FAILURES,
        "scans": SCANS,
        "vessel_metrics": VESSEL_METRICS,
        "qc": QC,
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


def table_from_rows(name: str, rows: Iterable[Mapping[str, Any]]) -> pa.Table:
    """Build a table of ``name`` from row dicts, cast to the declared schema.

    ``schema_version`` defaults to `SCHEMA_VERSION` when a row leaves it out. Float NaN
    becomes null.

    Raises
    ------
    ValueError
        On an unknown column, a missing or null non-nullable column, a naive (timezone-less)
        ``computed_at``, a ``schema_version`` other than `SCHEMA_VERSION`, or a value that
        does not cast to the declared type.
    """
    declared = schema(name)
    rows = [_with_defaults(dict(row)) for row in rows]
    unknown = sorted({key for row in rows for key in row} - set(declared.names))
    if unknown:
        raise ValueError(f"{name}: columns not in the schema: {unknown}")
    arrays = [_column(name, fld, rows) for fld in declared]
    return pa.Table.from_arrays(arrays, schema=declared)


def conform_table(name: str, table: pa.Table) -> pa.Table:
    """Cast an Arrow table to the declared schema of ``name`` (column order included).

    Missing nullable columns are added as nulls; float NaN becomes null. Raises
    ``ValueError`` on unknown columns, missing non-nullable columns, nulls in non-nullable
    columns or failed casts.
    """
    declared = schema(name)
    unknown = sorted(set(table.column_names) - set(declared.names))
    if unknown:
        raise ValueError(f"{name}: columns not in the schema: {unknown}")
    columns = []
    for fld in declared:
        if fld.name not in table.column_names:
            if not fld.nullable:
                raise ValueError(f"{name}: missing non-nullable column {fld.name!r}")
            columns.append(pa.nulls(table.num_rows, type=fld.type))
            continue
        col = table.column(fld.name)
        try:
            col = col.cast(fld.type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
            raise ValueError(
                f"{name}.{fld.name}: cannot cast {col.type} to {fld.type}: {exc}"
            ) from exc
        if pa.types.is_floating(fld.type):
            col = pc.if_else(pc.is_nan(col), pa.scalar(None, type=fld.type), col)
        if not fld.nullable and col.null_count:
            raise ValueError(f"{name}: null in non-nullable column {fld.name!r}")
        columns.append(col)
    return pa.Table.from_arrays(columns, schema=declared)


def _with_defaults(row: dict[str, Any]) -> dict[str, Any]:
    row.setdefault("schema_version", SCHEMA_VERSION)
    return row


def _column(table: str, fld: pa.Field, rows: list[dict[str, Any]]) -> pa.Array:
    """One declared column from the row dicts, validated and cast."""
    if rows and not fld.nullable and all(fld.name not in row for row in rows):
        raise ValueError(f"{table}: missing non-nullable column {fld.name!r}")
    values = [row.get(fld.name) for row in rows]
    if fld.name == "schema_version" and any(v != SCHEMA_VERSION for v in values):
        raise ValueError(f"{table}: schema_version must be {SCHEMA_VERSION!r}")
    if pa.types.is_timestamp(fld.type):
        for v in values:
            if isinstance(v, dt.datetime) and v.tzinfo is None:
                raise ValueError(f"{table}.{fld.name}: naive datetime {v!r}; give a timezone")
    try:
        arr = pa.array(values, type=fld.type, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
        raise ValueError(f"{table}.{fld.name}: values do not cast to {fld.type}: {exc}") from exc
    if not fld.nullable and arr.null_count:
        raise ValueError(f"{table}: null in non-nullable column {fld.name!r}")
    return arr
