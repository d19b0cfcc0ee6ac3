"""``mrcohort query``: DuckDB SQL over a store (every table a view with its declared schema,
plus ``<table>_current``), printed as a table or written as CSV / Parquet. Registered in
:mod:`mrcohort.cli.app`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from mrcohort.cli.common import console, fail, out_console


def query(
    sql: Annotated[str, typer.Argument(help='SQL, e.g. "SELECT * FROM organ_metrics_current".')],
    store: Annotated[Path, typer.Option(help="The store to query.")],
    csv: Annotated[Path | None, typer.Option(help="Write every row to this CSV file.")] = None,
    parquet: Annotated[
        Path | None, typer.Option(help="Write every row to this Parquet file.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="Rows printed (files get all).")] = 50,
) -> None:
    """Run SQL over the store's tables (read-only) and print the result, or write it."""
    import duckdb
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from mrcohort.readers import connect

    if not store.is_dir():
        raise fail(f"store {store} does not exist")
    con = connect(store)
    try:
        read_only(con, store)
        result = con.sql(sql)
        table = result.to_arrow_table() if result is not None else None
    except duckdb.Error as exc:
        raise fail(f"query failed: {str(exc).splitlines()[0]}") from exc
    finally:
        con.close()
    if table is None:
        raise fail("the SQL returned no result (use a SELECT)")
    if csv is not None:
        pacsv.write_csv(table, csv)
    if parquet is not None:
        pq.write_table(table, parquet)
    if csv is None and parquet is None:
        out_console.print(_rich(table, limit))
    console.print(f"{table.num_rows:,} rows", highlight=False)


def read_only(con, store: Path) -> None:
    """Lock DuckDB connection ``con`` (``readers.connect``'s views over ``store``) down: it
    may read the store's data files and nothing else, and write no file anywhere.

    DuckDB's sandbox: external access off except for the exact files the views read (allowed
    *directories* would also let ``COPY ... TO`` write into them), then the configuration
    locked so that no later statement can lift it. ``COPY ... TO``, ``EXPORT DATABASE``,
    ``ATTACH``, ``INSTALL``/``LOAD`` and reading other files then fail with a one-line
    ``Permission Error``; tables created by the SQL live in memory and go with the process."""
    from mrcohort.schemas.store import table_files
    from mrcohort.schemas.tables import SCHEMAS

    listed = [f for name in SCHEMAS for f in table_files(store, name)]
    files = sorted({*listed, *(str(Path(f).resolve()) for f in listed)})  # as read, and real
    con.execute("SET allowed_paths = ?", [files])
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def _rich(table, limit: int) -> Table:
    out = Table(*table.column_names)
    for row in table.slice(0, limit).to_pylist():
        out.add_row(*("" if v is None else str(v) for v in row.values()))
    return out
