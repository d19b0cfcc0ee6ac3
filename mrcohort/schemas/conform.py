"""Row dicts and Arrow tables cast to a table's declared schema, validated on the way.

`table_from_rows` turns the row dicts every writer builds (`mrcohort.schemas.rows`) into a
table; `conform_table` casts an existing table (the store runs it before every write).
Float NaN becomes null in both.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from mrcohort.schemas.tables import SCHEMA_VERSION, schema

__all__ = ["conform_table", "table_from_rows"]


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
    rows = [{"schema_version": SCHEMA_VERSION, **row} for row in rows]
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
