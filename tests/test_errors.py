"""Coded errors and the one exception -> code guard every stage uses."""

from __future__ import annotations

from pathlib import Path

import pytest

from mrcohort.errors import (
    ENVIRONMENT_CODES,
    IngestError,
    MrcohortError,
    StitchError,
    as_error,
    guard,
)


def test_coded_errors_keep_code_stage_and_message() -> None:
    err = StitchError("STATION_GAP", "2 mm gap")
    assert (err.code, err.stage, err.message) == ("STATION_GAP", "stitch", "2 mm gap")
    assert str(err) == "STATION_GAP: 2 mm gap"
    assert as_error(err, "segment") is err  # a coded error keeps its own stage


def test_any_other_exception_becomes_a_code_of_the_stage() -> None:
    oom = as_error(MemoryError("no more"), "segment")
    assert (oom.code, oom.stage) == ("OUT_OF_MEMORY", "segment")
    bug = as_error(ValueError("first line\nsecond line"), "measure")
    assert (bug.code, bug.stage) == ("UNEXPECTED_ERROR", "measure")
    assert bug.message == "ValueError: first line"


def test_a_full_disk_is_disk_full_naming_the_file_and_retried() -> None:
    import errno

    for number in (errno.ENOSPC, errno.EDQUOT):
        err = as_error(OSError(number, "No space left on device", "/store/seg.nii.gz"), "segment")
        assert (err.code, err.stage) == ("DISK_FULL", "segment")
        assert "/store/seg.nii.gz" in err.message
    assert "DISK_FULL" in ENVIRONMENT_CODES
    assert as_error(OSError(errno.EIO, "I/O error"), "segment").code == "UNEXPECTED_ERROR"


def test_guard_reraises_coded_and_maps_the_rest() -> None:
    with pytest.raises(IngestError), guard("stitch"):
        raise IngestError("NOT_A_ZIP", "bad")
    with pytest.raises(MrcohortError) as info, guard("stitch"):
        raise ZeroDivisionError("boom")
    assert (info.value.code, info.value.stage) == ("UNEXPECTED_ERROR", "stitch")
    assert info.value.message == "ZeroDivisionError: boom"
    assert isinstance(info.value.__cause__, ZeroDivisionError)


@pytest.mark.parametrize(
    "code", ["ZIP_TOO_LARGE", "ZIP_CORRUPT", "BAD_SPACING", "BAD_DIRECTION", "IMAGE_TOO_LARGE"]
)
def test_hostile_input_codes_are_documented_input_codes(code: str) -> None:
    """Refused hostile inputs are caused by the input: documented, never retried by a run."""
    assert code not in ENVIRONMENT_CODES
    failures = (Path(__file__).resolve().parents[1] / "docs" / "failures.md").read_text()
    assert f"| ingest | `{code}` |" in failures
