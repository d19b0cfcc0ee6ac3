"""Tests for mrcohort.io.dicom.slices: one DICOM file parsed, checked, summarised."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import numpy as np
import pydicom
import pydicom.config
import pytest
import SimpleITK as sitk

from mrcohort.errors import IngestError
from mrcohort.io.dicom import DicomSlice, is_dicom_file, read_slice, scan_dicom
from tests.builders import dicom_series, encode, non_image_object


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


# --------------------------------------------------------------------------- hostile headers


def edited(files: dict[str, bytes], **attributes: object) -> list[tuple[str, bytes]]:
    """Every file re-encoded with ``attributes`` set (``None`` deletes one), values that
    pydicom would refuse to write included."""
    out = []
    old = pydicom.config.settings.writing_validation_mode
    pydicom.config.settings.writing_validation_mode = pydicom.config.IGNORE
    try:
        for name, data in files.items():
            ds = pydicom.dcmread(BytesIO(data))
            for keyword, value in attributes.items():
                if value is None:
                    delattr(ds, keyword)
                else:
                    setattr(ds, keyword, value)
            out.append((name, encode(ds)))
    finally:
        pydicom.config.settings.writing_validation_mode = old
    return out


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({"PixelSpacing": [0.0, 0.8]}, "BAD_SPACING"),
        ({"PixelSpacing": [1.3, -0.8]}, "BAD_SPACING"),
        ({"PixelSpacing": ["nan", 0.8]}, "BAD_SPACING"),
        ({"PixelSpacing": [1.3, "inf"]}, "BAD_SPACING"),
        ({"ImageOrientationPatient": [1, 0, 0, 0.5, 1, 0]}, "BAD_DIRECTION"),
        ({"ImageOrientationPatient": [1, 0, 0, 1, 0, 0]}, "BAD_DIRECTION"),
        ({"ImageOrientationPatient": [1, 0, 0, 0, "nan", 0]}, "BAD_DIRECTION"),
        ({"ImagePositionPatient": [0, "nan", 0]}, "DICOM_UNREADABLE"),
        ({"BitsAllocated": 12, "BitsStored": 12}, "DICOM_UNSUPPORTED"),
        ({"BitsStored": 17}, "DICOM_UNSUPPORTED"),
        ({"PixelRepresentation": 2}, "DICOM_UNSUPPORTED"),
    ],
    ids=[
        "zero-spacing",
        "negative-spacing",
        "nan-spacing",
        "inf-spacing",
        "sheared",
        "degenerate",
        "nan-direction",
        "nan-position",
        "bits-allocated-12",
        "bits-stored-17",
        "pixel-representation-2",
    ],
)
def test_header_refused_before_pixels_are_decoded(
    attributes: dict[str, object], expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = edited(dicom_series(image()), **attributes)

    def no_decoding(self: DicomSlice) -> None:
        raise AssertionError("pixel data decoded")

    monkeypatch.setattr(DicomSlice, "stored", no_decoding)
    with pytest.raises(IngestError) as info:
        scan_dicom(files)
    assert info.value.code == expected


def test_series_longer_than_max_axis_refused_before_decoding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    files = list(dicom_series(image()).items())  # 7 columns, 6 rows, 5 slices
    monkeypatch.setattr(DicomSlice, "stored", lambda self: pytest.fail("decoded"))
    with pytest.raises(IngestError) as info:
        scan_dicom(files, max_axis=6)
    assert info.value.code == "IMAGE_TOO_LARGE"


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({}, 2.5),
        ({"SpacingBetweenSlices": None}, 2.5),  # SliceThickness then
        ({"SpacingBetweenSlices": 0.0}, 2.5),  # SliceThickness then
        ({"SpacingBetweenSlices": -2.0, "SliceThickness": 3.0}, 3.0),
        ({"SpacingBetweenSlices": None, "SliceThickness": 0.0}, "BAD_SPACING"),  # not 1 mm
        ({"SpacingBetweenSlices": 0.0, "SliceThickness": "nan"}, "BAD_SPACING"),
        ({"SpacingBetweenSlices": None, "SliceThickness": None}, "BAD_SPACING"),
    ],
)
def test_single_slice_spacing(attributes: dict[str, object], expected: float | str) -> None:
    name, data = next(iter(dicom_series(image()).items()))
    files = edited({name: data}, **attributes)
    if isinstance(expected, float):
        (series,) = scan_dicom(files).series
        assert series.image.GetSpacing()[2] == pytest.approx(expected)
        return
    with pytest.raises(IngestError) as info:
        scan_dicom(files)
    assert info.value.code == expected


def test_file_on_disk_above_the_limit_is_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name, data = next(iter(dicom_series(image()).items()))
    path = tmp_path / name
    path.write_bytes(data)
    assert isinstance(read_slice(path, max_bytes=len(data))[1], DicomSlice)  # inclusive
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail("read"))
    with pytest.raises(IngestError) as info:
        scan_dicom([path], max_file_bytes=len(data) - 1)
    assert info.value.code == "IMAGE_TOO_LARGE"
