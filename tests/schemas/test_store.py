"""The atomic hive-partitioned Parquet store: writes, reads with the declared schema, DuckDB."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mrcohort.schemas import store
from mrcohort.schemas.conform import table_from_rows
from mrcohort.schemas.store import query, read_table, write_table
from mrcohort.schemas.tables import FAILURES, ORGAN_METRICS, SCHEMAS
from tests.schemas.samples import NOW, PART, failure_row, measure_rows, organ_rows


def test_round_trip_pyarrow_and_duckdb(tmp_path: Path) -> None:
    table = table_from_rows("organ_metrics", organ_rows())
    path = write_table(tmp_path, "organ_metrics", table, partition=PART, file_key="b0001")
    assert path == tmp_path / "organ_metrics/cohort=ukbb/model_key=mrseg-abc123/part-b0001.parquet"
    in_file = pq.read_schema(path)
    assert "cohort" not in in_file.names and "model_key" not in in_file.names

    back = read_table(tmp_path, "organ_metrics")
    assert back.schema.equals(ORGAN_METRICS, check_metadata=True)
    assert back.to_pylist() == table.to_pylist()

    glob = f"{tmp_path.as_posix()}/organ_metrics/**/*.parquet"
    con = duckdb.connect()
    sql = f"SELECT * FROM read_parquet('{glob}', hive_partitioning=true) ORDER BY label_id"
    rel = con.sql(sql).fetch_arrow_table()
    con.close()
    assert rel.num_rows == 3
    assert set(rel.column_names) == set(ORGAN_METRICS.names)
    assert rel.column("cohort").to_pylist() == ["ukbb"] * 3
    assert rel.column("model_key").to_pylist() == ["mrseg-abc123"] * 3
    assert rel.column("volume_ml").to_pylist() == table.column("volume_ml").to_pylist()
    assert rel.column("computed_at").to_pylist()[0] == NOW

    got = query(tmp_path, "SELECT count(*) AS n, sum(n_vox) AS v FROM organ_metrics")
    assert got.to_pylist() == [{"n": 3, "v": sum(table.column("n_vox").to_pylist())}]


def test_partition_columns_may_be_absent_or_must_match(tmp_path: Path) -> None:
    table = table_from_rows("organ_metrics", organ_rows()).drop_columns(["cohort", "model_key"])
    write_table(tmp_path, "organ_metrics", table, partition=PART, file_key="k")
    assert read_table(tmp_path, "organ_metrics").column("cohort").to_pylist() == ["ukbb"] * 3
    wrong = table_from_rows("organ_metrics", organ_rows())
    with pytest.raises(ValueError, match="partition says"):
        write_table(
            tmp_path, "organ_metrics", wrong, partition={**PART, "cohort": "nako"}, file_key="k"
        )


def test_retried_write_replaces_itself(tmp_path: Path) -> None:
    first = table_from_rows("organ_metrics", organ_rows("1000001"))
    second = table_from_rows("organ_metrics", organ_rows("1000009"))
    write_table(tmp_path, "organ_metrics", first, partition=PART, file_key="b7")
    write_table(tmp_path, "organ_metrics", second, partition=PART, file_key="b7")
    files = list((tmp_path / "organ_metrics").rglob("*.parquet"))
    assert len(files) == 1
    back = read_table(tmp_path, "organ_metrics")
    assert set(back.column("participant_id").to_pylist()) == {"1000009"}
    assert list((tmp_path / store.STAGING_DIR).iterdir()) == []


def test_several_partitions_and_failures_table(tmp_path: Path) -> None:
    write_table(
        tmp_path,
        "failures",
        table_from_rows("failures", [failure_row()]),
        partition=PART,
        file_key="f1",
    )
    other = {"cohort": "1234", "model_key": "m2"}  # numeric-looking values stay strings
    write_table(
        tmp_path,
        "failures",
        table_from_rows("failures", [failure_row(cohort="1234", model_key="m2")]),
        partition=other,
        file_key="f1",
    )
    back = read_table(tmp_path, "failures")
    assert back.schema.equals(FAILURES, check_metadata=True)
    assert sorted(back.column("cohort").to_pylist()) == ["1234", "ukbb"]
    assert back.column("input_sha256").to_pylist() == [None, None]
    got = query(tmp_path, "SELECT cohort FROM failures ORDER BY cohort")
    assert got.schema.field("cohort").type == pa.string()
    assert got.column("cohort").to_pylist() == ["1234", "ukbb"]


def test_read_never_written_table_is_empty(tmp_path: Path) -> None:
    table = read_table(tmp_path, "organ_metrics")
    assert table.num_rows == 0
    assert table.schema.equals(ORGAN_METRICS, check_metadata=True)


def test_read_keeps_new_columns_absent_from_old_files(tmp_path: Path) -> None:
    """Files written before a nullable column existed read back with nulls there."""
    old = table_from_rows("organ_metrics", organ_rows()).drop_columns(
        ["cohort", "model_key", "swap_suspected"]
    )
    dest = tmp_path / "organ_metrics/cohort=ukbb/model_key=mrseg-abc123/part-old.parquet"
    dest.parent.mkdir(parents=True)
    pq.write_table(old, dest)
    write_table(
        tmp_path,
        "organ_metrics",
        table_from_rows("organ_metrics", organ_rows()),
        partition=PART,
        file_key="new",
    )
    back = read_table(tmp_path, "organ_metrics")
    assert "swap_suspected" in back.column_names
    assert back.num_rows == 6
    assert back.column("swap_suspected").null_count == 3


@pytest.mark.parametrize(
    "partition",
    [
        {"cohort": "../x", "model_key": "m"},
        {"cohort": "a/b", "model_key": "m"},
        {"cohort": "..", "model_key": "m"},
        {"cohort": "", "model_key": "m"},
        {"cohort": "ukbb", "model_key": "m k"},
        {"source": "x.zip"},  # nullable column
        {"visit_x": "2"},
        {},
    ],
)
def test_bad_partition_rejected(tmp_path: Path, partition: dict[str, str]) -> None:
    table = table_from_rows("failures", [failure_row()])
    with pytest.raises(ValueError):
        write_table(tmp_path, "failures", table, partition=partition, file_key="k")
    assert not (tmp_path / "failures").exists()


@pytest.mark.parametrize("file_key", ["../evil", "a/b", "", ".."])
def test_bad_file_key_rejected(tmp_path: Path, file_key: str) -> None:
    table = table_from_rows("failures", [failure_row()])
    with pytest.raises(ValueError, match="file_key"):
        write_table(tmp_path, "failures", table, partition=PART, file_key=file_key)


def test_no_temp_files_after_failed_cast(tmp_path: Path) -> None:
    table = table_from_rows("organ_metrics", organ_rows())
    bad = table.set_column(
        table.schema.get_field_index("n_vox"), "n_vox", pa.array(["many"] * table.num_rows)
    )
    with pytest.raises(ValueError, match="n_vox"):
        write_table(tmp_path, "organ_metrics", bad, partition=PART, file_key="b1")
    assert not list(tmp_path.rglob("*.parquet"))
    assert not list(tmp_path.rglob("*.tmp"))


def test_no_temp_files_after_failed_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    table = table_from_rows("organ_metrics", organ_rows())
    write_table(tmp_path, "organ_metrics", table, partition=PART, file_key="b1")

    def boom(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(store.pq, "write_table", boom)
    with pytest.raises(OSError, match="disk full"):
        write_table(tmp_path, "organ_metrics", table, partition=PART, file_key="b1")
    assert list((tmp_path / store.STAGING_DIR).iterdir()) == []
    assert read_table(tmp_path, "organ_metrics").num_rows == 3  # old file intact


@pytest.mark.parametrize("name", ["vessel_metrics", "qc"])
def test_round_trip_vessel_and_qc_tables(tmp_path: Path, name: str) -> None:
    rows = measure_rows()[name]
    table = table_from_rows(name, rows)
    assert table.schema.equals(SCHEMAS[name], check_metadata=True)
    write_table(tmp_path, name, table, partition=PART, file_key="b1")
    back = read_table(tmp_path, name)
    assert back.to_pylist() == table.to_pylist()
    got = query(tmp_path, f"SELECT count(*) AS n FROM {name}")
    assert got.to_pylist() == [{"n": len(rows)}]
    if name == "vessel_metrics":
        aorta = next(r for r in back.to_pylist() if r["label_id"] == 13)
        assert aorta["n_components_26"] == 2 and aorta["tortuosity_index"] is None
