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
            description="MRSegmentator label id (1..40)",
        ),
        _field(
            "label_name", pa.string(), nullable=False, unit="", description="MRSegmentator label"
        ),
        _field(
            "label_group",
            pa.string(),
            nullable=False,
            unit="",
            description="anatomical group: organ, vessel, muscle, bone",
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
            description="liver, spleen or muscle with median fat fraction > 0.5: fat-water swap?",
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

#: Table name -> declared schema.
SCHEMAS: Mapping[str, pa.Schema] = MappingProxyType(
    {"organ_metrics": ORGAN_METRICS, "failures": FAILURES}
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
