"""The Parquet store: atomic, hive-partitioned writes and schema-declared reads.

Layout: ``<root>/<table>/<key>=<value>/.../part-<file_key>.parquet``, e.g.
``<root>/organ_metrics/cohort=ukbb/model_key=3f2a.../part-batch0007.parquet``.
Temp files live in ``<root>/.staging/`` (same filesystem, outside every dataset) and are
moved into place with ``os.replace``, so readers never see a partial file and a retried
write with the same ``file_key`` replaces its earlier attempt.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from mrcohort.faults import failpoint
from mrcohort.ids import check_partition_value
from mrcohort.io.files import atomic_target
from mrcohort.schemas.conform import conform_table
from mrcohort.schemas.tables import PARTITION_KEYS, SCHEMAS, empty_table, schema

#: Folder under the store root that holds temp files during writes.
STAGING_DIR = ".staging"
_COMPRESSION = "zstd"


def write_table(
    root: Path,
    name: str,
    table: pa.Table,
    *,
    partition: Mapping[str, str],
    file_key: str,
) -> Path:
    """Write ``table`` atomically as one Parquet file of a hive-partitioned dataset.

    Parameters
    ----------
    root : Path
        Store root; the dataset is ``root / name``.
    name : str
        Declared table name (see `mrcohort.schemas.tables.SCHEMAS`).
    table : pyarrow.Table
        Rows to write; cast to the declared schema. Partition columns may be left out; if
        present, every value must equal the partition value.
    partition : mapping of str to str
        Partition column -> value, in path order, e.g. ``{"cohort": "ukbb", "model_key":
        "abc"}``. Keys must be non-nullable string columns of the schema; values must match
        ``[A-Za-z0-9_.-]+`` and not contain ``..``. Partition columns are not stored inside
        the file: hive partitioning restores them on read.
    file_key : str
        Deterministic file name stem (same charset as values); a retried write with the
        same key replaces the earlier file.

    Returns
    -------
    Path
        The final file path.

    Raises
    ------
    ValueError
        On an unknown table, an unsafe partition key/value or file key, or rows that do not
        conform to the declared schema. Nothing is left behind on failure.
    """
    declared = schema(name)
    _check_partition(declared, partition)
    check_partition_value(file_key, "file_key")
    full = conform_table(name, _fill_partition_columns(table, partition))
    body = full.drop_columns(list(partition))

    dest_dir = Path(root, name, *(f"{key}={value}" for key, value in partition.items()))
    dest = dest_dir / f"part-{file_key}.parquet"
    with atomic_target(dest, staging_dir=Path(root, STAGING_DIR)) as tmp, open(tmp, "wb") as fh:
        pq.write_table(body, fh, compression=_COMPRESSION)
        failpoint(f"store.write.{name}", path=tmp)
        fh.flush()
        os.fsync(fh.fileno())
    _fsync_dir(dest_dir)
    return dest


def read_table(root: Path, name: str) -> pa.Table:
    """Read every file of table ``name`` with the declared schema.

    Columns missing from older files come back as nulls instead of new columns being
    dropped (pyarrow would otherwise infer the schema from one file). A table never
    written reads as a zero-row table with the full schema. Only ``part-*.parquet`` files
    count (``runs/`` also holds each run's folder of config, log and status).
    """
    return table_dataset(root, name).to_table()


def table_dataset(root: Path, name: str) -> ds.Dataset:
    """The files of table ``name`` as one pyarrow dataset with the declared schema (lazy:
    DuckDB and pyarrow read only the columns and rows asked for); empty when never written."""
    declared = schema(name)
    path = Path(root, name)
    files = table_files(root, name)
    if not files:
        return ds.dataset(empty_table(name))
    return ds.dataset(
        files,
        format="parquet",
        partitioning=ds.partitioning(
            pa.schema([declared.field(k) for k in PARTITION_KEYS]), flavor="hive"
        ),
        partition_base_dir=str(path),
        schema=declared,
    )


def table_files(root: Path, name: str) -> list[str]:
    """The data files of table ``name``, sorted (``part-*.parquet`` under its partitions)."""
    path = Path(root, name)
    return sorted(str(p) for p in path.glob("*=*/**/part-*.parquet")) if path.is_dir() else []


def query(root: Path, sql: str) -> pa.Table:
    """Run DuckDB SQL over the store; each declared table that exists is a view by its name.

    Partition values are read as text (no type guessing), files are unioned by column name.

    Example: ``query(root, "SELECT label_name, avg(volume_ml) FROM organ_metrics GROUP BY 1")``.
    """
    con = duckdb.connect()
    try:
        for name in _existing_tables(root):
            glob = (Path(root, name) / "**" / "*.parquet").as_posix().replace("'", "''")
            con.execute(
                f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{glob}', "
                "hive_partitioning = true, union_by_name = true, hive_types_autocast = false)"
            )
        rel = con.sql(sql)
        return pa.table({}) if rel is None else rel.fetch_arrow_table()
    finally:
        con.close()


def _existing_tables(root: Path) -> list[str]:
    return [name for name in SCHEMAS if any(Path(root, name).rglob("*.parquet"))]


def _check_partition(declared: pa.Schema, partition: Mapping[str, str]) -> None:
    if not partition:
        raise ValueError("partition must name at least one column")
    for key, value in partition.items():
        idx = declared.get_field_index(key) if isinstance(key, str) else -1
        fld = declared.field(idx) if idx >= 0 else None
        if fld is None or not pa.types.is_string(fld.type) or fld.nullable:
            raise ValueError(f"partition key {key!r} is not a non-nullable string column")
        check_partition_value(value, f"partition value of {key!r}")


def _fill_partition_columns(table: pa.Table, partition: Mapping[str, str]) -> pa.Table:
    """Add constant partition columns, or check that the existing ones match."""
    for key, value in partition.items():
        if key in table.column_names:
            values = set(table.column(key).to_pylist())
            if values - {value}:
                raise ValueError(
                    f"column {key!r} holds {sorted(map(str, values))}, partition says {value!r}"
                )
        else:
            table = table.append_column(key, pa.array([value] * table.num_rows, pa.string()))
    return table


def _fsync_dir(path: Path) -> None:
    """Make a rename durable (best effort: not every OS/filesystem allows it)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
