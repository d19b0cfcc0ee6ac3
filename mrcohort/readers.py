"""Reading the store from notebooks: every table with its declared schema, and the *current*
rows — per participant-visit, only those of the newest model and measurement version — while
all versions stay queryable.

    import mrcohort
    organs = mrcohort.open_table("organ_metrics", "/data/store")          # pandas, current
    every = mrcohort.open_table("organ_metrics", store, current=False, to="arrow")
    con = mrcohort.duckdb(store)     # views: organ_metrics, organ_metrics_current, models, ...
    con.sql("SELECT model_name, count(*) FROM organ_metrics_current JOIN models USING "
            "(cohort, model_key) GROUP BY 1")

"Newest" is by ``computed_at``: a participant-visit's current rows in a table are those of the
(model_key, measure_key) it was most recently computed with. ``model=`` (a model_key or a
model name from the ``models`` registry) chooses among models first.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa

from mrcohort.schemas.store import table_dataset
from mrcohort.schemas.tables import SCHEMAS, schema

__all__ = ["CURRENT_TABLES", "connect", "open_table"]

#: Tables of per-participant results that have a ``<name>_current`` view.
CURRENT_TABLES: tuple[str, ...] = ("organ_metrics", "vessel_metrics", "qc")
_VISIT = "cohort, participant_id, visit"


def _current_sql(relation: str) -> str:
    """The rows of ``relation`` whose (model_key, measure_key) is the participant-visit's most
    recently computed one."""
    return (
        f"WITH latest AS (SELECT {_VISIT}, "
        "arg_max([model_key, measure_key], computed_at) AS version "
        f"FROM {relation} GROUP BY ALL) "
        f"SELECT r.* FROM {relation} r JOIN latest l USING ({_VISIT}) "
        "WHERE [r.model_key, r.measure_key] = l.version"
    )


def connect(store: str | os.PathLike[str]):  # -> duckdb.DuckDBPyConnection
    """An in-memory DuckDB connection over the store, read-only: every declared table as a
    view with its declared schema (empty when never written), plus ``<table>_current`` for
    the per-participant result tables. Nothing can be written into the store through it."""
    import duckdb

    con = duckdb.connect(":memory:")
    for name in SCHEMAS:
        con.register(f"_{name}", table_dataset(Path(store), name))
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM _{name}")
    for name in CURRENT_TABLES:
        con.execute(f"CREATE VIEW {name}_current AS {_current_sql(name)}")
    return con


def _model_keys(con: Any, model: str) -> list[str]:
    """model_keys a ``model=`` argument names: itself if it is a key, else by model name."""
    rows = con.execute(
        "SELECT DISTINCT model_key FROM models WHERE model_key = ? OR model_name = ?",
        [model, model],
    ).fetchall()
    keys = [r[0] for r in rows] or [model]
    return keys


def open_table(
    name: str,
    store: str | os.PathLike[str],
    *,
    current: bool = True,
    cohort: str | None = None,
    model: str | None = None,
    columns: Sequence[str] | None = None,
    to: Literal["pandas", "arrow", "polars"] = "pandas",
) -> Any:
    """Table ``name`` of ``store`` with its declared schema (types, units in the metadata).

    Parameters
    ----------
    current
        Per participant-visit, only the rows of the newest model and measurement version
        (tables with versions: organ_metrics, vessel_metrics, qc); False: every version.
    cohort, model
        Only this cohort; only this model (a ``model_key``, or a ``model_name`` of the
        ``models`` registry such as ``"demo"`` or ``"mrsegmentator"``).
    columns
        Only these columns (default: all, in declared order).
    to
        ``"pandas"`` (DataFrame), ``"arrow"`` (pyarrow.Table) or ``"polars"`` (if installed).

    Raises
    ------
    ValueError
        An unknown table or column name.
    """
    declared = schema(name)
    wanted = list(columns or declared.names)
    unknown = [c for c in wanted if c not in declared.names]
    if unknown:
        raise ValueError(f"{name}: no columns {unknown}; known: {declared.names}")
    con = connect(store)
    try:
        where, params = [], []
        if cohort is not None:
            where.append("cohort = ?")
            params.append(cohort)
        if model is not None:
            keys = _model_keys(con, model)
            where.append(f"model_key IN ({', '.join('?' * len(keys))})")
            params.extend(keys)
        base = f"(SELECT * FROM {name}{' WHERE ' + ' AND '.join(where) if where else ''})"
        if current and name in CURRENT_TABLES:
            sql, params = _current_sql(base), params * 2  # the base appears twice
        else:
            sql = f"SELECT * FROM {base}"
        table = con.sql(sql, params=params).to_arrow_table()
    finally:
        con.close()
    table = table.select(wanted).cast(pa.schema([declared.field(c) for c in wanted]))
    if to == "arrow":
        return table
    if to == "polars":
        import polars

        return polars.from_arrow(table)
    return table.to_pandas()
