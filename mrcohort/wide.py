"""The wide table: one row per participant-visit (and sequence), one column per label and
measurement — what epidemiologists merge with phenotypes.

    import mrcohort
    wide = mrcohort.wide_table("/data/store", cohort="ukbb", model="mrsegmentator")
    wide[["participant_id", "liver_volume_ml", "liver_ff_median", "qc_pass"]]

Built from the *current* rows (see :mod:`mrcohort.readers`) of ``organ_metrics``,
``vessel_metrics`` and ``qc``. Columns:

- keys and provenance: ``cohort, participant_id, visit, sequence, model_key, model_name,
  measure_key, computed_at``;
- per label of ``organ_metrics``: ``<label>_volume_ml``, ``<label>_ff_median``,
  ``<label>_ff_mean``, ``<label>_ff_p25``, ``<label>_ff_p75``;
- per vessel label of ``vessel_metrics``: ``<label>_n_components_26``,
  ``<label>_is_single_component``, ``<label>_largest_component_fraction``, and for the
  vessels whose tortuosity is measured (the iliac arteries) ``<label>_tortuosity_status``,
  ``<label>_tortuosity_index``, ``<label>_centerline_length_mm``, ``<label>_chord_length_mm``,
  ``<label>_soam_rad_per_mm``;
- ``qc_pass`` (no QC flag on any label), ``qc_flags`` (``label:flag,flag;...``).

A structure the model found nothing of is **null** in every one of its columns, never 0 (a
long table says ``is_empty``; a wide one cannot, and 0 ml would enter a mean as a real
volume). Columns are keyed by label *name*, so models with different label ids line up.
:func:`wide_dictionary` describes every column (type, unit, source table and column, label):
``mrcohort export --wide`` writes it beside the table.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mrcohort.readers import connect, current_sql, model_keys, read_again_if_compacted
from mrcohort.schemas.tables import schema
from mrcohort.schemas.wide_columns import (
    KEYS,
    ORGAN,
    TORTUOSITY,
    VESSEL,
    WideColumn,
    column_stem,
    columns_of,
    ordered,
    organ_metrics,
    row_columns,
    vessel_metrics,
    wide_dictionary,
    with_units,
)

__all__ = ["WideColumn", "build_wide", "wide_dictionary", "wide_table", "with_units"]


def _quote(value: str) -> str:
    """A SQL string literal (values go into view definitions, which take no parameters)."""
    return "'" + value.replace("'", "''") + "'"


def _where(conditions: Sequence[str]) -> str:
    return f" WHERE {' AND '.join(conditions)}" if conditions else ""


def _filtered(table: str, where: Sequence[str]) -> str:
    return f"(SELECT * FROM {table}{_where(where)})"


def _label_columns(con: Any, view: str, extra: str = "") -> list[tuple[str, str, bool]]:
    """(label_name, column stem, has tortuosity) of every label in ``view``, by label id."""
    tort = "bool_or(tortuosity_status IS NOT NULL)" if extra else "false"
    rows = con.execute(
        f"SELECT label_name, {tort} FROM {view} GROUP BY label_name ORDER BY min(label_id), 1"
    ).fetchall()
    stems: dict[str, str] = {}
    out = []
    for name, has_tortuosity in rows:
        stem = column_stem(name)
        if stem in stems.values():  # two names, one stem (e.g. "Liver" and "liver")
            stem = f"{stem}_{len(stems)}"
        stems[name] = stem
        out.append((name, stem, bool(has_tortuosity)))
    return out


def _scatter(
    idx: pa.Table,
    n_rows: int,
    labels: Sequence[tuple[str, str, bool]],
    metrics: Callable[[bool], Sequence[str]],
    declared: pa.Schema,
) -> dict[str, pa.Array]:
    """The long rows ``idx`` (``_row``, ``label_name``, ``_empty`` and metric columns) as one
    column per label and metric, ``n_rows`` long; an empty label's cells are null.

    Hand-written scatter (``out[row, label] = value``): DuckDB's PIVOT of ~250 columns over
    4 million rows takes seconds to minutes, a numpy scatter by index well under a second."""
    rows = idx.column("_row").to_numpy()
    position = {name: j for j, (name, _, _) in enumerate(labels)}
    encoded = pc.dictionary_encode(idx.column("label_name")).combine_chunks()
    lookup = np.array([position[n] for n in encoded.dictionary.to_pylist()], dtype=np.int64)
    cols = lookup[encoded.indices.to_numpy()] if idx.num_rows else np.zeros(0, np.int64)
    keep = ~idx.column("_empty").to_numpy(zero_copy_only=False).astype(bool)
    out: dict[str, pa.Array] = {}
    for metric in dict.fromkeys(m for _, _, tort in labels for m in metrics(tort)):
        type_ = declared.field(metric).type
        column = idx.column(metric)
        valid = keep & column.is_valid().to_numpy(zero_copy_only=False)
        values = _numpy(column, type_)
        grid = np.zeros((n_rows, len(labels)), dtype=values.dtype)
        present = np.zeros((n_rows, len(labels)), dtype=bool)
        grid[rows, cols] = values
        present[rows, cols] = valid
        for j, (_, stem, tort) in enumerate(labels):
            if metric in metrics(tort):
                out[f"{stem}_{metric}"] = pa.array(grid[:, j], type=type_, mask=~present[:, j])
    return out


def _numpy(column: pa.ChunkedArray, type_: pa.DataType) -> np.ndarray:
    """A column as numpy, nulls filled (they are masked again later)."""
    if pa.types.is_string(type_):
        return np.asarray(column.to_pylist(), dtype=object)
    if pa.types.is_boolean(type_):
        return column.fill_null(False).to_numpy(zero_copy_only=False).astype(bool)
    if pa.types.is_integer(type_):
        return column.fill_null(0).to_numpy()
    return column.fill_null(np.nan).to_numpy()


_QC_SQL = (
    "SELECT p._row, bool_and(q.qc_pass) AS qc_pass, any_value(q.picture_path) AS "
    "qc_picture_path, coalesce(string_agg(CASE WHEN "
    "q.qc_flags <> '' THEN q.label_name || ':' || q.qc_flags END, ';' ORDER BY q.label_id), '') "
    f"AS qc_flags FROM q JOIN pv_rows p USING ({', '.join(KEYS)}, model_key, measure_key) "
    "GROUP BY p._row"
)


def _sequence(con: Any, sequence: str | None) -> str | None:
    if sequence is not None:
        return sequence
    rows = con.execute("SELECT DISTINCT sequence FROM o_all ORDER BY 1").fetchall()
    found = [r[0] for r in rows]
    if len(found) > 1:
        raise ValueError(f"the rows hold several sequences {found}: choose one with sequence=")
    return found[0] if found else None


def build_wide(
    store: str | os.PathLike[str],
    *,
    cohort: str | None = None,
    model: str | None = None,
    sequence: str | None = None,
) -> tuple[pa.Table, list[WideColumn]]:
    """The wide table (Arrow) and its column descriptions; see :func:`wide_table`."""
    return read_again_if_compacted(lambda: _build_wide(store, cohort, model, sequence))


def _build_wide(
    store: str | os.PathLike[str], cohort: str | None, model: str | None, sequence: str | None
) -> tuple[pa.Table, list[WideColumn]]:
    con = connect(store)
    try:
        where = []
        if cohort is not None:
            where.append(f"cohort = {_quote(cohort)}")
        if model is not None:
            keys = model_keys(con, model)
            where.append(f"model_key IN ({', '.join(map(_quote, keys))})")
        # the current version of each participant-visit from organ_metrics; vessel_metrics
        # and qc rows are written with them (one flush, one attempt), so they follow it
        con.execute(f"CREATE TEMP VIEW o_all AS {current_sql(_filtered('organ_metrics', where))}")
        chosen = _sequence(con, sequence)
        if chosen is not None:
            where.append(f"sequence = {_quote(chosen)}")
        con.execute(
            f"CREATE TEMP VIEW o AS SELECT * FROM o_all{_where(where[-1:] if chosen else [])}"
        )
        con.execute(f"CREATE TEMP VIEW v AS {_filtered('vessel_metrics', where)}")
        con.execute(f"CREATE TEMP VIEW q AS {_filtered('qc', where)}")
        keys_sql = ", ".join(KEYS)
        organ = con.sql(
            f"SELECT {keys_sql}, label_id, label_name, model_key, measure_key, computed_at, "
            f"is_empty AS _empty, {', '.join(ORGAN)} FROM o"
        ).to_arrow_table()
        con.register("o_rows", organ)
        pv = con.sql(
            f"SELECT {keys_sql}, any_value(model_key) AS model_key, any_value(measure_key) "
            f"AS measure_key, max(computed_at) AS computed_at FROM o_rows GROUP BY ALL "
            f"ORDER BY {keys_sql}"
        ).to_arrow_table()
        pv = pv.append_column("_row", pa.array(np.arange(pv.num_rows, dtype=np.int64)))
        con.register("pv_rows", pv)
        vessel_cols = ", ".join((*VESSEL, *TORTUOSITY))
        vessel = con.sql(
            f"SELECT p._row, v.label_id, v.label_name, v.largest_component_fraction IS NULL "
            f"AS _empty, {vessel_cols} FROM v JOIN pv_rows p "
            f"USING ({keys_sql}, model_key, measure_key)"
        ).to_arrow_table()
        con.register("v_rows", vessel)
        organ = con.sql(
            f"SELECT p._row, o.label_name, o._empty, {', '.join(ORGAN)} "
            f"FROM o_rows o JOIN pv_rows p USING ({keys_sql})"
        ).to_arrow_table()
        organ_labels = _label_columns(con, "o_rows")
        vessel_labels = _label_columns(con, "v_rows", extra="tortuosity")
        qc = con.sql(_QC_SQL).to_arrow_table()
        names = con.sql(
            "SELECT p._row, m.model_name FROM pv_rows p JOIN (SELECT cohort, model_key, "
            "any_value(model_name) AS model_name FROM models GROUP BY ALL) m "
            "USING (cohort, model_key)"
        ).to_arrow_table()
    finally:
        con.close()
    n = pv.num_rows
    columns = {name: pv.column(name) for name in (*KEYS, "model_key", "measure_key", "computed_at")}
    columns["model_name"] = _by_row(names, "model_name", n)
    columns |= _scatter(organ, n, organ_labels, organ_metrics, schema("organ_metrics"))
    columns |= _scatter(vessel, n, vessel_labels, vessel_metrics, schema("vessel_metrics"))
    columns["qc_pass"] = _by_row(qc, "qc_pass", n)
    columns["qc_flags"] = _by_row(qc, "qc_flags", n)
    columns["qc_picture_path"] = _by_row(qc, "qc_picture_path", n)
    cols = ordered(
        row_columns(),
        columns_of(organ_labels, organ_metrics, "organ_metrics"),
        columns_of(vessel_labels, vessel_metrics, "vessel_metrics"),
    )
    return pa.table({c.name: columns[c.name] for c in cols}), cols


def _by_row(table: pa.Table, column: str, n: int) -> pa.Array:
    """``table``'s ``column`` placed at its ``_row`` (null where no row)."""
    rows = table.column("_row").to_numpy()
    index = np.full(n, -1, dtype=np.int64)
    index[rows] = np.arange(len(rows))
    taken = table.column(column).combine_chunks().take(pa.array(index, mask=index < 0))
    return taken


def wide_table(
    store: str | os.PathLike[str],
    *,
    cohort: str | None = None,
    model: str | None = None,
    sequence: str | None = None,
    to: Literal["pandas", "arrow", "polars"] = "pandas",
) -> Any:
    """One row per participant-visit of the current results, one column per label and metric.

    Parameters
    ----------
    store
        The store folder.
    cohort, model
        Only this cohort; only this model (a ``model_key`` or a ``model_name`` of the
        ``models`` registry). Without ``model``, each participant-visit's newest model.
    sequence
        The image sequence (``dixon``, ``t2haste``, ...); needed only when the rows hold
        several.
    to
        ``"pandas"``, ``"arrow"`` (units and descriptions in the field metadata) or
        ``"polars"``.

    Raises
    ------
    ValueError
        Several sequences and no ``sequence``.
    """
    table, cols = build_wide(Path(store), cohort=cohort, model=model, sequence=sequence)
    if to == "arrow":
        return with_units(table, cols)
    if to == "polars":
        import polars

        return polars.from_arrow(table)
    return to_pandas(table)


def to_pandas(table: pa.Table) -> Any:
    """A pandas DataFrame in which a null stays a null: integer and boolean columns become
    pandas' nullable ``Int*`` / ``boolean`` (not float / object), floats NaN."""
    import pandas as pd

    mapping = {
        pa.int16(): pd.Int16Dtype(),
        pa.int32(): pd.Int32Dtype(),
        pa.int64(): pd.Int64Dtype(),
        pa.bool_(): pd.BooleanDtype(),
    }
    return table.to_pandas(types_mapper=mapping.get)
