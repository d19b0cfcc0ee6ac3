"""The data dictionary: every declared table's columns (type, unit, nullability, description,
partition key) read from the declared Arrow schemas, and its two renderings: Markdown
(``docs/tables.md``, ``mrcohort schema --markdown``) and plain text (``mrcohort schema``).

Nothing here is declared a second time: types, units and descriptions come from the field
metadata of `mrcohort.schemas.tables.SCHEMAS`, the partition columns from ``PARTITION_KEYS``
and a table's description from its schema metadata ``mrcohort.description`` when declared.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pyarrow as pa

from mrcohort.schemas.tables import PARTITION_KEYS, SCHEMAS, schema

__all__ = [
    "DESCRIPTION_KEY",
    "ColumnEntry",
    "TableEntry",
    "data_dictionary",
    "describe_table",
    "to_markdown",
    "to_text",
    "type_name",
]

#: Schema metadata key of a table's description (optional).
DESCRIPTION_KEY = b"mrcohort.description"

#: Arrow types whose ``str`` is not the name users know them by.
_TYPE_NAMES = {
    pa.float16(): "float16",
    pa.float32(): "float32",
    pa.float64(): "float64",
}

_TITLE = "# Tables"
_INTRO = (
    "Generated from the declared schemas (`mrcohort/schemas/tables.py`, "
    "`mrcohort/schemas/run_tables.py`) by `mrcohort schema --markdown > docs/tables.md`; "
    "do not edit by hand. Every table is a hive-partitioned Parquet dataset "
    "`<store>/<table>/cohort=<cohort>/model_key=<model_key>/part-*.parquet` (`scans` under "
    "`model_key=none`); the partition columns live in the folder names, not inside the "
    "files. Units are UCUM-style and appear twice: in a measurement's column name "
    "(`volume_ml`, `spacing_x_mm`, `seconds_segment`) and in each Parquet field's "
    "metadata, with its description: "
    '`pyarrow.parquet.read_schema(path).field("volume_ml").metadata` gives '
    "`{b'unit': b'ml', b'description': ...}`. Unit `1` is a dimensionless ratio, "
    "`{voxel}`, `{component}`, `{station}` and `{input}` are counts, an empty unit means "
    "none (identifiers, text, flags, timestamps). Float NaN is stored as null."
)


@dataclass(frozen=True)
class ColumnEntry:
    """One column of a table as the dictionary shows it."""

    name: str
    type: str
    """Arrow type as users see it, e.g. ``string``, ``float64``, ``timestamp[us, UTC]``."""
    unit: str
    """UCUM-style unit; ``""`` for none."""
    nullable: bool
    description: str
    partition: bool
    """A hive partition column: in the folder names, not inside the Parquet files."""


@dataclass(frozen=True)
class TableEntry:
    """One declared table: its name, description (``""`` if none declared) and columns."""

    name: str
    description: str
    columns: tuple[ColumnEntry, ...]


def type_name(type_: pa.DataType) -> str:
    """An Arrow type as users see it: ``float64`` (not ``double``), ``timestamp[us, UTC]``,
    ``list<string>``, ``fixed_size_list<float64>[9]``."""
    if pa.types.is_timestamp(type_):
        return f"timestamp[{type_.unit}, {type_.tz}]" if type_.tz else f"timestamp[{type_.unit}]"
    if pa.types.is_fixed_size_list(type_):
        return f"fixed_size_list<{type_name(type_.value_type)}>[{type_.list_size}]"
    if pa.types.is_list(type_) or pa.types.is_large_list(type_):
        return f"list<{type_name(type_.value_type)}>"
    return _TYPE_NAMES.get(type_, str(type_))


def describe_table(declared: pa.Schema) -> TableEntry:
    """The dictionary entry of one declared schema."""
    meta = declared.metadata or {}
    columns = []
    for fld in declared:
        fmeta = fld.metadata or {}
        columns.append(
            ColumnEntry(
                name=fld.name,
                type=type_name(fld.type),
                unit=fmeta.get(b"unit", b"").decode(),
                nullable=fld.nullable,
                description=fmeta.get(b"description", b"").decode(),
                partition=fld.name in PARTITION_KEYS,
            )
        )
    return TableEntry(
        name=meta[b"mrcohort.table"].decode(),
        description=meta.get(DESCRIPTION_KEY, b"").decode(),
        columns=tuple(columns),
    )


def data_dictionary(names: Sequence[str] | None = None) -> tuple[TableEntry, ...]:
    """Entries of the tables ``names`` (in that order, repeats dropped), or of every declared
    table; ``ValueError`` for an unknown name."""
    wanted = list(SCHEMAS) if not names else list(dict.fromkeys(names))
    return tuple(describe_table(schema(name)) for name in wanted)


def to_markdown(tables: Iterable[TableEntry]) -> str:
    """The Markdown document: title, intro, then one ``## <table>`` section per table."""
    parts = [_TITLE, _INTRO]
    for table in tables:
        parts.append(f"## {table.name}")
        if table.description:
            parts.append(_md_escape(table.description))
        rows = [
            "| column | type | unit | nullable | partition | description |",
            "|---|---|---|---|---|---|",
        ]
        rows += [
            f"| `{c.name}` | `{c.type}` | {_md_escape(c.unit)} | {_yes_no(c.nullable)} "
            f"| {'yes' if c.partition else ''} | {_md_escape(c.description)} |"
            for c in table.columns
        ]
        parts.append("\n".join(rows))
    return "\n\n".join(parts) + "\n"


def to_text(tables: Iterable[TableEntry]) -> str:
    """Plain text for the terminal: per table its name, description and one aligned line per
    column (column, type, unit, nullable, partition, description)."""
    blocks = []
    for table in tables:
        head = ("column", "type", "unit", "nullable", "partition", "description")
        rows = [head] + [
            (
                c.name,
                c.type,
                c.unit,
                _yes_no(c.nullable),
                "yes" if c.partition else "",
                c.description,
            )
            for c in table.columns
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(len(head) - 1)]
        lines = [f"{table.name} ({len(table.columns)} columns)"]
        if table.description:
            lines.append(f"  {table.description}")
        lines += [
            "  " + "  ".join([*(v.ljust(w) for v, w in zip(row, widths, strict=False)), row[-1]])
            for row in rows
        ]
        blocks.append("\n".join(line.rstrip() for line in lines))
    return "\n\n".join(blocks) + "\n" if blocks else ""


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def _md_escape(text: str) -> str:
    """Text safe in a Markdown table cell: no line breaks; ``\\``, ``|``, ``<``, ``*``
    escaped (``<path>`` would otherwise read as an HTML tag)."""
    for char in ("\\", "|", "<", "*"):
        text = text.replace(char, "\\" + char)
    return " ".join(text.split())
