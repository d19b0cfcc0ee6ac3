"""The columns of the wide table (:mod:`mrcohort.wide`) and its data dictionary: names
(``<label>_<metric>``), types, units and descriptions from the declared long tables."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pyarrow as pa

from mrcohort.schemas.dictionary import type_name
from mrcohort.schemas.tables import schema

__all__ = [
    "KEYS",
    "ORGAN",
    "TORTUOSITY",
    "VESSEL",
    "WideColumn",
    "column_stem",
    "columns_of",
    "ordered",
    "organ_metrics",
    "row_columns",
    "vessel_metrics",
    "wide_dictionary",
    "with_units",
]

KEYS = ("cohort", "participant_id", "visit", "sequence")
ORGAN = ("volume_ml", "ff_median", "ff_mean", "ff_p25", "ff_p75")
VESSEL = ("n_components_26", "is_single_component", "largest_component_fraction")
TORTUOSITY = (
    "tortuosity_status",
    "tortuosity_index",
    "centerline_length_mm",
    "chord_length_mm",
    "soam_rad_per_mm",
)
#: Whole-row columns: (name, source table, source column, description).
_ROW_COLUMNS = (
    ("model_name", "models", "model_name", "name of the segmentation model (models registry)"),
    ("qc_pass", "qc", "qc_pass", "no QC flag raised on any label; null without qc rows"),
    (
        "qc_flags",
        "qc",
        "qc_flags",
        "raised QC flags as 'label:flag,flag;label:flag'; empty if none",
    ),
    (
        "qc_picture_path",
        "qc",
        "picture_path",
        "QC picture of the participant-visit, relative to the store root; null if none",
    ),
)


@dataclass(frozen=True)
class WideColumn:
    """One column of the wide table and where it comes from."""

    name: str
    type: str
    unit: str
    description: str
    source_table: str
    source_column: str
    label_name: str | None = None


def column_stem(label_name: str) -> str:
    """A label name as a column prefix: lower case, ``[a-z0-9_]`` only."""
    stem = re.sub(r"[^a-z0-9_]+", "_", label_name.lower()).strip("_")
    return stem or "label"


def organ_metrics(tortuosity: bool) -> tuple[str, ...]:
    return ORGAN


def vessel_metrics(tortuosity: bool) -> tuple[str, ...]:
    return (*VESSEL, *(TORTUOSITY if tortuosity else ()))


def columns_of(
    labels: Sequence[tuple[str, str, bool]], metrics: Callable[[bool], Sequence[str]], table: str
) -> list[WideColumn]:
    declared = schema(table)
    return [
        _wide_column(f"{stem}_{m}", declared.field(m), table, name)
        for name, stem, tort in labels
        for m in metrics(tort)
    ]


def _wide_column(col: str, source: pa.Field, table: str, label: str | None) -> WideColumn:
    meta = {k.decode(): v.decode() for k, v in (source.metadata or {}).items()}
    description = meta.get("description", "")
    if label is not None:
        description = f"{label}: {description}; null if the label is absent"
    return WideColumn(
        col, type_name(source.type), meta.get("unit", ""), description, table, source.name, label
    )


def row_columns() -> list[WideColumn]:
    cols = []
    for name in (*KEYS, "model_key", "measure_key", "computed_at"):
        cols.append(_wide_column(name, schema("organ_metrics").field(name), "organ_metrics", None))
    for name, table, source, description in _ROW_COLUMNS:
        cols.append(
            WideColumn(
                name, type_name(schema(table).field(source).type), "", description, table, source
            )
        )
    return cols


def ordered(
    row: list[WideColumn], organ: list[WideColumn], vessel: list[WideColumn]
) -> list[WideColumn]:
    """Keys and provenance, then organ and vessel columns, then the QC summary."""
    head = [c for c in row if c.source_table != "qc"]
    tail = [c for c in row if c.source_table == "qc"]
    return [*head, *organ, *vessel, *tail]


def wide_dictionary(columns: Sequence[WideColumn]) -> pa.Table:
    """The data dictionary of a wide table: one row per column."""
    names = ("column", "type", "unit", "description", "source_table", "source_column", "label")
    values = [
        (c.name, c.type, c.unit, c.description, c.source_table, c.source_column, c.label_name)
        for c in columns
    ]
    return pa.table({n: pa.array([v[i] for v in values], pa.string()) for i, n in enumerate(names)})


def with_units(table: pa.Table, columns: Sequence[WideColumn]) -> pa.Table:
    """``table`` with each column's unit and description as Arrow field metadata (kept in
    Parquet files; pandas and DuckDB ignore it, hence also the sidecar dictionary)."""
    by_name = {c.name: c for c in columns}
    fields = [
        f.with_metadata({"unit": by_name[f.name].unit, "description": by_name[f.name].description})
        for f in table.schema
    ]
    return table.cast(pa.schema(fields, metadata={"mrcohort.table": "wide"}))
