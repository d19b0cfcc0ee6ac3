"""The published tables: their declared Arrow schemas (`tables`, built from `columns`), the
row builders every writer shares (`rows`), row -> table casting (`conform`) and the
hive-partitioned Parquet store (`store`)."""

from mrcohort.schemas.conform import conform_table, table_from_rows
from mrcohort.schemas.rows import NO_MODEL_KEY, failure_row, provenance
from mrcohort.schemas.store import query, read_table, write_table
from mrcohort.schemas.tables import (
    FAILURES,
    ORGAN_METRICS,
    PARTITION_KEYS,
    QC,
    SCANS,
    SCHEMA_VERSION,
    SCHEMAS,
    VESSEL_METRICS,
    empty_table,
    schema,
)

__all__ = [
    "FAILURES",
    "NO_MODEL_KEY",
    "ORGAN_METRICS",
    "PARTITION_KEYS",
    "QC",
    "SCANS",
    "SCHEMAS",
    "SCHEMA_VERSION",
    "VESSEL_METRICS",
    "conform_table",
    "empty_table",
    "failure_row",
    "provenance",
    "query",
    "read_table",
    "schema",
    "table_from_rows",
    "write_table",
]
