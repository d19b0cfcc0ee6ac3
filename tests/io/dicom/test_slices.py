"""Tests for mrcohort.io.dicom.slices: one DICOM file parsed, checked, summarised."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from mrcohort.errors import IngestError
from mrcohort.io.dicom import DicomSlice, is_dicom_file, read_slice, scan_dicom
from tests.builders import dicom_series, non_image_object


def image() -> sitk.Image:
    """Small float32 axial image, 7 x 6 x 5 voxels."""
    rng = np.random.default_rng(0)
    img = sitk.GetImageFromArray(rng.uniform(-50.0, 400.0, (5, 6, 7)).astype(np.float32))
    img.SetSpacing((0.8, 1.3, 2.5))
    return img


def test_read_slice_summarises_an_image_file() -> None:
    files = dicom_series(image())
    name, data = next(iter(files.items()))
    got_name, summary = read_slice((name, data))
    assert got_name == name and isinstance(summary, DicomSlice)
    assert (summary.rows, summary.columns) == (6, 7)
    assert summary.pixel_spacing == pytest.approx((1.3, 0.8))
    np.testing.assert_allclose(summary.row, [1, 0, 0])
    np.testing.assert_allclose(summary.col, [0, 1, 0])
    assert summary.pixels().shape == (6, 7)
    assert len(summary.sha256) == 64


def test_read_slice_gives_the_reason_for_an_object_to_skip() -> None:
    name, reason = read_slice(("report.dcm", non_image_object("sr")))
    assert name == "report.dcm" and "no pixel data" in reason


def test_is_dicom_file(tmp_path: Path) -> None:
    dcm = tmp_path / "a.dcm"
    dcm.write_bytes(next(iter(dicom_series(image()).values())))
    txt = tmp_path / "notes.txt"
    txt.write_text("not DICOM")
    assert is_dicom_file(dcm) and not is_dicom_file(txt)
    assert not is_dicom_file(tmp_path / "gone.dcm")


def test_vanished_path_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(IngestError) as info:
        read_slice(tmp_path / "gone.dcm")
    assert info.value.code == "FILE_NOT_FOUND"


@pytest.mark.parametrize("fraction", [0.98, 0.7, 0.4, 0.15])
def test_truncated_file_is_unreadable(fraction: float) -> None:
    files = list(dicom_series(image()).items())
    name, data = files[2]
    files[2] = (name, data[: int(len(data) * fraction)])
    with pytest.raises(IngestError) as info:
        scan_dicom(files)
    assert info.value.code == "DICOM_UNREADABLE"
    assert info.value.stage == "ingest"


def test_not_dicom_is_unreadable() -> None:
    with pytest.raises(IngestError) as info:
        scan_dicom([("notes.dcm", b"this is not a DICOM file" * 20)])
    assert info.value.code == "DICOM_UNREADABLE"


def test_object_without_pixel_data_is_ignored_with_a_note() -> None:
    files = [*dicom_series(image()).items(), ("report.dcm", non_image_object("sr"))]
    scan = scan_dicom(files)
    assert len(scan.series) == 1
    assert scan.n_image_files == len(files) - 1
    assert [name for name, _ in scan.ignored] == ["report.dcm"]
    assert "no pixel data" in scan.ignored[0][1]
    assert scan_dicom([("doc.dcm", non_image_object("pdf"))]).series == []
