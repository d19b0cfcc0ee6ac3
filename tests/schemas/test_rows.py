"""The shared row builders: provenance columns and the failures row."""

from __future__ import annotations

from mrcohort import __version__
from mrcohort.errors import MrcohortError
from mrcohort.schemas.conform import table_from_rows
from mrcohort.schemas.rows import NO_MODEL_KEY, failure_row, provenance
from mrcohort.schemas.tables import SCHEMAS
from tests.schemas.samples import NOW


def test_provenance_fills_every_provenance_column_but_the_schema_version() -> None:
    row = provenance(input_sha256=None, params_hash="p", now=NOW)
    for sch in SCHEMAS.values():  # every table ends with the same provenance columns
        assert [n for n in sch.names[-8:] if n != "schema_version"] == list(row)
    assert row["model_key"] == NO_MODEL_KEY and row["code_version"] == __version__
    assert provenance(input_sha256=None, params_hash="p")["computed_at"].tzinfo is not None


def test_failure_row_is_a_failures_row_with_the_errors_stage_and_code() -> None:
    err = MrcohortError("OUT_OF_MEMORY", "ran out", stage="segment")
    row = failure_row(
        err,
        cohort="ukbb",
        participant_id="1000001",
        visit="2",
        source="a.zip",
        input_sha256="0" * 64,
        params_hash="p",
        model_key="k",
        now=NOW,
    )
    (back,) = table_from_rows("failures", [row]).to_pylist()
    assert (back["stage"], back["code"], back["message"]) == ("segment", "OUT_OF_MEMORY", "ran out")
    assert back["model_key"] == "k" and back["computed_at"] == NOW
