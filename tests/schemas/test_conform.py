"""Rows and tables cast to the declared schemas: casting, defaults, NaN and errors."""

from __future__ import annotations

import datetime as dt
import math

import pyarrow as pa
import pytest

from mrcohort.schemas.conform import conform_table, table_from_rows
from mrcohort.schemas.tables import ORGAN_METRICS, SCHEMA_VERSION
from tests.schemas.samples import failure_row, organ_rows


def test_table_from_rows_casts_and_fills() -> None:
    table = table_from_rows("organ_metrics", organ_rows())
    assert table.schema.equals(ORGAN_METRICS, check_metadata=True)
    assert table.column("schema_version").to_pylist() == [SCHEMA_VERSION] * 3
    empty_row = table.to_pylist()[2]
    assert empty_row["label_id"] == 40 and empty_row["is_empty"]
    assert empty_row["ff_median"] is None  # NaN stored as null
    assert table.column("ff_median").to_pylist()[0] == pytest.approx(0.1)
    assert table_from_rows("failures", [failure_row()]).num_rows == 1
    assert table_from_rows("organ_metrics", []).schema.equals(ORGAN_METRICS)


def test_table_from_rows_errors() -> None:
    rows = organ_rows()
    for row in rows:
        del row["participant_id"]
    with pytest.raises(ValueError, match="missing non-nullable column 'participant_id'"):
        table_from_rows("organ_metrics", rows)
    with pytest.raises(ValueError, match="null in non-nullable column 'code'"):
        table_from_rows("failures", [failure_row(code=None)])
    with pytest.raises(ValueError, match="not in the schema"):
        table_from_rows("failures", [failure_row(colour="red")])
    with pytest.raises(ValueError, match="naive"):
        table_from_rows("failures", [failure_row(computed_at=dt.datetime(2024, 1, 1))])
    with pytest.raises(ValueError, match="label_id"):
        table_from_rows("organ_metrics", [{**organ_rows()[0], "label_id": "liver"}])
    with pytest.raises(ValueError, match="unknown table"):
        table_from_rows("organs", [])


def test_conform_table_nan_to_null_and_missing_nullable() -> None:
    table = table_from_rows("organ_metrics", organ_rows()).drop_columns(["ff_p25"])
    table = table.set_column(
        table.schema.get_field_index("ff_mean"), "ff_mean", pa.array([math.nan, 0.1, None])
    )
    out = conform_table("organ_metrics", table)
    assert out.schema.equals(ORGAN_METRICS)
    assert out.column("ff_p25").null_count == 3
    assert out.column("ff_mean").to_pylist() == [None, 0.1, None]
