"""The declared schemas: every column's type, unit, nullability and description."""

from __future__ import annotations

import pyarrow as pa
import pytest

from mrcohort.schemas.tables import (
    FAILURES,
    ORGAN_METRICS,
    QC,
    SCHEMA_VERSION,
    SCHEMAS,
    VESSEL_METRICS,
    empty_table,
    schema,
)

S, I16, I64, F64, B = pa.string(), pa.int16(), pa.int64(), pa.float64(), pa.bool_()
TS = pa.timestamp("us", tz="UTC")
PROVENANCE = {
    "input_sha256": S,
    "model_key": S,
    "measure_key": S,
    "code_version": S,
    "params_hash": S,
    "schema_version": S,
    "computed_at": TS,
    "run_id": S,
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
        "slot": S,
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
    "picture_path": S,
    **PROVENANCE,
}


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


def test_units_and_nullability_of_vessel_and_qc_measures() -> None:
    units = {f.name: (f.metadata or {})[b"unit"].decode() for f in VESSEL_METRICS}
    assert units["centerline_length_mm"] == "mm" and units["dust_mm3"] == "mm3"
    assert units["tortuosity_index"] == "1" and units["soam_rad_per_mm"] == "rad/mm"
    assert not VESSEL_METRICS.field("n_components_26").nullable
    assert VESSEL_METRICS.field("tortuosity_index").nullable
    assert QC.field("swap_suspected").nullable and not QC.field("qc_pass").nullable
    assert {f.name: (f.metadata or {})[b"unit"].decode() for f in QC}["volume_ml"] == "ml"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_empty_table_has_full_schema(name: str) -> None:
    table = empty_table(name)
    assert table.num_rows == 0
    assert table.schema.equals(SCHEMAS[name], check_metadata=True)


def test_every_table_is_registered_under_its_own_name() -> None:
    for name, sch in SCHEMAS.items():
        assert schema(name) is sch
        assert sch.metadata[b"mrcohort.table"] == name.encode()
    with pytest.raises(ValueError, match="unknown table"):
        schema("organs")
