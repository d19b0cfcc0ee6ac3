"""Tests for mrcohort.cohort.layouts.manifest: the CSV parsed, rows grouped and read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mrcohort.cohort.layouts import discover, get_layout, load_layout
from mrcohort.cohort.layouts.manifest import manifest_path, read_manifest
from mrcohort.errors import IngestError
from tests.builders import (
    dicom_series,
    dixon_manifest_cohort,
    nifti,
    non_image_object,
    station,
    unpack,
    write_manifest,
)


def test_rows_validated(tmp_path: Path) -> None:
    absolute = nifti(tmp_path / "elsewhere" / "a.nii.gz", np.ones((3, 3, 3), np.float32))
    path = write_manifest(
        tmp_path / "in" / "manifest.csv",
        [
            ("p01", "base", "dixon", "in", 1, "p01/in_0.nii.gz"),
            ("p01", "base", "ct", "ct", "", absolute),
            ("../evil", "base", "dixon", "in", 1, "x.nii.gz"),
            ("p02", "v 1", "t1", "t1", 1, "x.nii.gz"),
            ("p03", "1", "Dixon", "in", 1, "x.nii.gz"),
            ("p04", "1", "t1", "t1", "first", "x.nii.gz"),
            ("p05", "1", "t1", "t1", 1, ""),
        ],
    )
    entries, rejected = read_manifest(path.parent)
    assert [(e.participant_id, e.station, e.line) for e in entries] == [
        ("p01", 1, 2),
        ("p01", None, 3),
    ]
    assert entries[0].path == tmp_path / "in" / "p01" / "in_0.nii.gz"
    assert entries[1].path == absolute
    codes = [(r.code, r.participant_id) for r in rejected]
    assert codes == [
        ("BAD_PARTICIPANT_ID", ""),
        *[("BAD_MANIFEST_ROW", pid) for pid in ("p02", "p03", "p04", "p05")],
    ]
    assert "manifest.csv line 4" in rejected[0].message and "'../evil'" in rejected[0].message
    messages = " ".join(r.message for r in rejected[1:])
    for fragment in ("visit 'v 1'", "sequence 'Dixon'", "station 'first'", "empty path"):
        assert fragment in messages


def test_manifest_path(tmp_path: Path) -> None:
    with pytest.raises(IngestError) as info:
        manifest_path(tmp_path)
    assert info.value.code == "FILE_NOT_FOUND"
    path = write_manifest(tmp_path / "mine.csv", [])
    assert manifest_path(path) == path


def test_discover_groups_rows_by_participant_visit(tmp_path: Path) -> None:
    dixon_manifest_cohort(tmp_path, ["p02", "p01"], n_stations=2)
    pvs, rejected = discover("manifest", tmp_path)
    assert not rejected
    assert [(pv.participant_id, pv.visit, len(pv.entries)) for pv in pvs] == [
        ("p01", "base", 8),
        ("p02", "base", 8),
    ]
    assert pvs[0].source == tmp_path / "manifest.csv" and pvs[0].root == tmp_path


def test_read_files_and_dicom(tmp_path: Path) -> None:
    nifti(tmp_path / "a.nii.gz", np.ones((3, 4, 5), np.float32))
    series = dicom_series(station(0, "in"), number=7)
    unpack({**series, ".DS_Store": b"junk"}, tmp_path / "series")
    single = tmp_path / "one.dcm"
    single.write_bytes(next(iter(series.values())))
    write_manifest(
        tmp_path / "manifest.csv",
        [
            ("p1", "1", "t1", "t1", 3, "a.nii.gz"),
            ("p1", "1", "dixon", "in", 1, "series"),
            ("p1", "1", "dixon", "opp", 1, "one.dcm"),
        ],
    )
    (pv,) = discover("manifest", tmp_path).pvs
    stations = get_layout("manifest").read(pv, load_layout("manifest"))
    got = [(s.sequence, s.channel, s.source, s.format, s.station_hint) for s in stations]
    assert got == [
        ("t1", "t1", "a.nii.gz", "nifti", 3),
        ("dixon", "in", "series", "dicom", 1),
        ("dixon", "opp", "one.dcm", "dicom", 1),
    ]
    assert stations[1].image.GetSize() == (6, 5, 4) and stations[2].image.GetSize()[2] == 1
    assert stations[1].series_number == 7 and stations[1].modality == "MR"


def read_code(tmp_path: Path, rel: str) -> str:
    """Code of reading a one-row manifest naming ``rel``."""
    write_manifest(tmp_path / "manifest.csv", [("p1", "1", "t1", "t1", 1, rel)])
    (pv,) = discover("manifest", tmp_path).pvs
    with pytest.raises(IngestError) as info:
        get_layout("manifest").read(pv, load_layout("manifest"))
    return info.value.code


def test_read_errors(tmp_path: Path) -> None:
    assert read_code(tmp_path, "gone.nii.gz") == "FILE_NOT_FOUND"
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "report.dcm").write_bytes(non_image_object("sr"))
    assert read_code(tmp_path, "docs") == "NOT_AN_IMAGE"
    (tmp_path / "empty").mkdir()
    assert read_code(tmp_path, "empty") == "NOT_AN_IMAGE"
    series = {
        **dicom_series(station(1, "in"), number=2),
        **dicom_series(station(2, "in"), number=5),
    }
    unpack(series, tmp_path / "two")
    assert read_code(tmp_path, "two") == "MULTIPLE_SERIES"
    nan = np.ones((3, 3, 3), np.float32)
    nan[1, 1, 1] = np.nan
    nifti(tmp_path / "nan.nii.gz", nan)
    assert read_code(tmp_path, "nan.nii.gz") == "NONFINITE_VOXELS"


def test_dicom_file_above_max_member_mb_is_not_read(tmp_path: Path) -> None:
    data = next(iter(dicom_series(station(0, "in"), number=7).values()))
    (tmp_path / "one.dcm").write_bytes(data)
    write_manifest(tmp_path / "manifest.csv", [("p1", "1", "dixon", "in", 1, "one.dcm")])
    settings = tmp_path / "limits.yaml"
    settings.write_text(f"limits: {{max_member_mb: {(len(data) - 1) / 2**20}}}\n")
    (pv,) = discover("manifest", tmp_path).pvs
    with pytest.raises(IngestError) as info:
        get_layout("manifest").read(pv, load_layout("manifest", settings))
    assert info.value.code == "IMAGE_TOO_LARGE" and "per DICOM file" in info.value.message
    assert len(get_layout("manifest").read(pv, load_layout("manifest"))) == 1
