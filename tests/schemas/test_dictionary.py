"""The data dictionary (mrcohort.schemas.dictionary): every declared table and column, read
from the Arrow schemas; units of the measurement columns; docs/tables.md up to date."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pytest

from mrcohort.schemas.columns import declare_table, field
from mrcohort.schemas.dictionary import (
    DESCRIPTION_KEY,
    data_dictionary,
    describe_table,
    to_markdown,
    to_text,
    type_name,
)
from mrcohort.schemas.tables import PARTITION_KEYS, SCHEMAS

DOC = Path(__file__).resolve().parents[2] / "docs" / "tables.md"
REGENERATE = ".venv/bin/mrcohort schema --markdown > docs/tables.md"
#: Column name ending -> the unit it announces.
UNIT_SUFFIXES = {"_ml": "ml", "_mm": "mm", "_mm3": "mm3", "_s": "s", "_vox": "{voxel}"}


def test_every_declared_table_in_declaration_order() -> None:
    assert [t.name for t in data_dictionary()] == list(SCHEMAS)


@pytest.mark.parametrize("name", list(SCHEMAS))
def test_every_column_as_declared(name: str) -> None:
    declared = SCHEMAS[name]
    (entry,) = data_dictionary([name])
    assert entry.name == name
    assert [c.name for c in entry.columns] == declared.names
    for col, fld in zip(entry.columns, declared, strict=True):
        meta = fld.metadata
        assert col.type == type_name(fld.type)
        assert col.unit == meta[b"unit"].decode(), col.name
        assert col.description == meta[b"description"].decode() != "", col.name
        assert col.nullable is fld.nullable
        assert col.partition is (fld.name in PARTITION_KEYS)


@pytest.mark.parametrize("name", list(SCHEMAS))
def test_partition_columns_are_flagged_and_valid_partition_keys(name: str) -> None:
    (entry,) = data_dictionary([name])
    assert tuple(c.name for c in entry.columns if c.partition) == PARTITION_KEYS
    for col in entry.columns:
        if col.partition:  # what the store requires of a partition key
            assert col.type == "string" and not col.nullable


def test_every_measurement_column_has_its_unit() -> None:
    checked = 0
    for entry in data_dictionary():
        for col in entry.columns:
            if col.name.startswith("seconds_") or col.name.endswith("_seconds"):
                assert col.unit == "s", (entry.name, col.name)
                checked += 1
            for suffix, unit in UNIT_SUFFIXES.items():
                if col.name.endswith(f"_per{suffix}"):  # a rate: soam_rad_per_mm in rad/mm
                    assert col.unit.endswith(f"/{unit}"), (entry.name, col.name)
                elif col.name.endswith(suffix):
                    assert col.unit == unit, (entry.name, col.name)
                    checked += 1
    assert checked >= 20  # volume_ml, dust_mm3, spacing_x_mm, size_x_vox, seconds_segment, ...


@pytest.mark.parametrize(
    ("type_", "shown"),
    [
        (pa.string(), "string"),
        (pa.float64(), "float64"),
        (pa.float32(), "float32"),
        (pa.int16(), "int16"),
        (pa.bool_(), "bool"),
        (pa.timestamp("us", tz="UTC"), "timestamp[us, UTC]"),
        (pa.timestamp("ms"), "timestamp[ms]"),
        (pa.list_(pa.string()), "list<string>"),
        (pa.list_(pa.float64(), 9), "fixed_size_list<float64>[9]"),
    ],
)
def test_types_as_users_see_them(type_: pa.DataType, shown: str) -> None:
    assert type_name(type_) == shown


def test_table_description_and_escaping() -> None:
    declared = declare_table("toy", [field("a_ml", pa.float64(), "ml", "x | y <path> *z*")])
    declared = declared.with_metadata({**declared.metadata, DESCRIPTION_KEY: b"One row per toy."})
    entry = describe_table(declared)
    assert entry.description == "One row per toy."
    md = to_markdown([entry])
    assert "## toy\n\nOne row per toy.\n\n| column |" in md
    assert "| `a_ml` | `float64` | ml | no |  | x \\| y \\<path> \\*z\\* |\n" in md
    assert to_text([entry]).startswith("toy (1 columns)\n  One row per toy.\n  column")


def test_markdown_document_shape() -> None:
    entries = data_dictionary()
    md = to_markdown(entries)
    assert md.startswith("# Tables\n\n") and md.endswith(" |\n")
    assert re.findall(r"^## (\S+)$", md, flags=re.M) == list(SCHEMAS)
    rows = [ln for ln in md.splitlines() if ln.startswith("| `")]
    assert len(rows) == sum(len(e.columns) for e in entries)
    for row in rows:  # six cells each: no unescaped | inside a cell
        assert len(re.findall(r"(?<!\\)\|", row)) == 7, row


def test_docs_tables_md_is_up_to_date() -> None:
    assert DOC.read_text() == to_markdown(data_dictionary()), (
        f"docs/tables.md is out of date; regenerate with: {REGENERATE}"
    )


def test_text_shows_every_column_on_one_line() -> None:
    text = to_text(data_dictionary(["vessel_metrics", "qc"]))
    assert text.startswith("vessel_metrics (")
    assert "\n\nqc (" in text
    lines = text.splitlines()
    for name in ("vessel_metrics", "qc"):
        for fld in SCHEMAS[name]:
            assert any(ln.split()[:1] == [fld.name] for ln in lines), fld.name
    (line,) = [ln for ln in lines if ln.split()[:1] == ["dust_mm3"]]
    assert line.split()[:4] == ["dust_mm3", "float64", "mm3", "no"]
    assert to_text([]) == ""


def test_a_filter_keeps_the_order_given_and_drops_repeats() -> None:
    assert [t.name for t in data_dictionary(["qc", "scans", "qc"])] == ["qc", "scans"]
    with pytest.raises(ValueError, match="unknown table 'organs'"):
        data_dictionary(["qc", "organs"])
