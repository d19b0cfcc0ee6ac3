"""Declared schemas, table building and the atomic hive-partitioned Parquet store."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mrcohort.biomarkers.fat_fraction import fat_fraction_stats
from mrcohort.biomarkers.volume import label_volumes
from mrcohort.labels import MRSEG_LABELS
from mrcohort.schemas import store
from mrcohort.schemas.store import query, read_table, write_table
from mrcohort.schemas.tables import (
    FAILURES,
    ORGAN_METRICS,
    SCHEMA_VERSION,
    SCHEMAS,
    conform_table,
    empty_table,
    table_from_rows,
)

S, I16, I64, F64, B = pa.string(), pa.int16(), pa.int64(), pa.float64(), pa.bool_()
TS = pa.timestamp("us", tz="UTC")
PROVENANCE = {
    "input_sha256": S,
    "model_key": S,
    "code_version": S,
    "params_hash": S,
    "schema_version": S,
    "computed_at": TS,
}
EXPECTED = {
    "organ_metrics": {
        "cohort": S,
        "participant_id": S,
        "visit": S,
        "sequence": S,
        "label_id": I16,
        "label_name": S,
        "label_group": S,
        "n_vox": I64,
        "volume_ml": F64,
        "is_empty": B,
        "touches_border": B,
        "ff_median": F64,
        "ff_mean": F64,
        "ff_p25": F64,
        "ff_p75": F64,
        "ff_n_vox": I64,
        "ff_erosion_mm": F64,
        "ff_erosion_fallback": B,
        "swap_suspected": B,
        **PROVENANCE,
    },
    "failures": {
        "cohort": S,
        "participant_id": S,
        "visit": S,
        "stage": S,
        "code": S,
        "message": S,
        "source": S,
        **PROVENANCE,
    },
}
I32 = pa.int32()
_LABEL_KEYS = {
    "cohort": S,
    "participant_id": S,
    "visit": S,
    "sequence": S,
    "label_id": I16,
    "label_name": S,
}
EXPECTED["vessel_metrics"] = {
    **_LABEL_KEYS,
    "n_components_26": I32,
    "n_components_6": I32,
    "n_dust_components_26": I32,
    "n_dust_components_6": I32,
    "is_single_component": B,
    "largest_component_fraction": F64,
    "dust_mm3": F64,
    "tortuosity_status": S,
    "centerline_length_mm": F64,
    "chord_length_mm": F64,
    "tortuosity_index": F64,
    "soam_rad_per_mm": F64,
    "centerline_length_raw_mm": F64,
    "tortuosity_index_raw": F64,
    "tortuosity_n_components": I32,
    "tortuosity_largest_component_only": B,
    **PROVENANCE,
}
EXPECTED["qc"] = {
    **_LABEL_KEYS,
    "expected": B,
    "present": B,
    "missing": B,
    "volume_ml": F64,
    "volume_min_ml": F64,
    "volume_max_ml": F64,
    "implausible_volume": B,
    "truncated": B,
    "swap_suspected": B,
    "fragmented": B,
    "qc_flags": S,
    "qc_pass": B,
    **PROVENANCE,
}
NOW = dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.timezone.utc)
PART = {"cohort": "ukbb", "model_key": "mrseg-abc123"}


def _provenance(**over: Any) -> dict[str, Any]:
    row = {
        "input_sha256": "0" * 64,
        "model_key": "mrseg-abc123",
        "code_version": "0.1.0",
        "params_hash": "p" * 16,
        "computed_at": NOW,
    }
    row.update(over)
    return row


def organ_rows(participant_id: str = "1000001") -> list[dict[str, Any]]:
    """Rows built from real biomarker records on a tiny label map."""
    labels = np.zeros((6, 8, 8), dtype=np.uint8)
    labels[1:5, 1:7, 1:4] = 5
    labels[1:5, 1:7, 4:7] = 33
    fat = np.full(labels.shape, 10.0)
    water = np.full(labels.shape, 90.0)
    spacing = (3.0, 2.0, 2.0)
    ids = [5, 33, 40]
    vols = label_volumes(labels, spacing_mm=spacing, label_ids=ids)
    ffs = fat_fraction_stats(labels, fat=fat, water=water, spacing_mm=spacing, label_ids=ids)
    rows = []
    for vol, ff in zip(vols, ffs, strict=True):
        rows.append(
            {
                "cohort": "ukbb",
                "participant_id": participant_id,
                "visit": "2",
                "sequence": "dixon",
                "label_group": MRSEG_LABELS[vol.label_id].group.value,
                **asdict(vol),
                **asdict(ff),
                **_provenance(),
            }
        )
    return rows


def failure_row(**over: Any) -> dict[str, Any]:
    row = {
        "cohort": "ukbb",
        "participant_id": "1000002",
        "visit": None,
        "stage": "ingest",
        "code": "ZIP_INCOMPLETE",
        "message": "22 of 24 series",
        "source": "1000002_20201_2_0.zip",
        **_provenance(input_sha256=None),
    }
    row.update(over)
    return row


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_declared_dtype(name: str) -> None:
    sch = SCHEMAS[name]
    assert {f.name: f.type for f in sch} == EXPECTED[name]
    assert list(sch.names) == list(EXPECTED[name])
    for fld in sch:
        meta = fld.metadata or {}
        assert set(meta) == {b"unit", b"description"}, fld.name
        assert meta[b"description"], fld.name
    assert sch.metadata[b"mrcohort.schema_version"] == SCHEMA_VERSION.encode()
    for col in ("cohort", "participant_id", "model_key", "computed_at", "schema_version"):
        assert not sch.field(col).nullable


def test_units_and_nullability_of_measures() -> None:
    units = {f.name: (f.metadata or {})[b"unit"].decode() for f in ORGAN_METRICS}
    assert units["volume_ml"] == "ml"
    assert units["ff_erosion_mm"] == "mm"
    assert units["ff_median"] == "1"
    assert units["n_vox"] == "{voxel}"
    assert not ORGAN_METRICS.field("volume_ml").nullable
    assert ORGAN_METRICS.field("ff_median").nullable
    assert FAILURES.field("visit").nullable
    assert FAILURES.field("input_sha256").nullable


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_empty_table_has_full_schema(name: str) -> None:
    table = empty_table(name)
    assert table.num_rows == 0
    assert table.schema.equals(SCHEMAS[name], check_metadata=True)


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


def test_conform_table_nan_to_null_and_missing_nullable() -> None:
    table = table_from_rows("organ_metrics", organ_rows()).drop_columns(["ff_p25"])
    table = table.set_column(
        table.schema.get_field_index("ff_mean"), "ff_mean", pa.array([math.nan, 0.1, None])
    )
    out = conform_table("organ_metrics", table)
    assert out.schema.equals(ORGAN_METRICS)
    assert out.column("ff_p25").null_count == 3
    assert out.column("ff_mean").to_pylist() == [None, 0.1, None]


def _measure_rows() -> dict[str, list[dict[str, Any]]]:
    """vessel_metrics and qc rows from real biomarker records on a small phantom."""
    from mrcohort.biomarkers.participant import measure_participant
    from mrcohort.phantoms.fixtures import vessel_in_pieces

    case = vessel_in_pieces(2, spacing_mm=(3.0, 2.0, 2.0))
    rows = measure_participant(case.labels, spacing_mm=case.spacing_mm).rows()
    keys = {"cohort": "ukbb", "participant_id": "1000001", "visit": "2", "sequence": "dixon"}
    return {name: [{**keys, **r, **_provenance()} for r in rows[name]] for name in rows}


def test_units_and_nullability_of_vessel_and_qc_measures() -> None:
    from mrcohort.schemas.tables import QC, VESSEL_METRICS

    units = {f.name: (f.metadata or {})[b"unit"].decode() for f in VESSEL_METRICS}
    assert units["centerline_length_mm"] == "mm" and units["dust_mm3"] == "mm3"
    assert units["tortuosity_index"] == "1" and units["soam_rad_per_mm"] == "rad/mm"
    assert not VESSEL_METRICS.field("n_components_26").nullable
    assert VESSEL_METRICS.field("tortuosity_index").nullable
    assert QC.field("swap_suspected").nullable and not QC.field("qc_pass").nullable
    assert {f.name: (f.metadata or {})[b"unit"].decode() for f in QC}["volume_ml"] == "ml"


@pytest.mark.parametrize("name", ["vessel_metrics", "qc"])
def test_round_trip_vessel_and_qc_tables(tmp_path: Path, name: str) -> None:
    rows = _measure_rows()[name]
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
