"""Tests for mrcohort.io.dicom.series: slices grouped into series and stacked (round trips
through the phantom writer), lattice checks, content hashes."""

from __future__ import annotations

import dataclasses
import hashlib
import random
from io import BytesIO
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from mrcohort.errors import IngestError
from mrcohort.io.dicom import DicomSeries, scan_dicom, series_sha256
from mrcohort.phantoms.writers.dicom import write_series
from tests.builders import assert_same_grid, dicom_series, encode
from tests.conftest import shared_data


def series_of(files) -> list[DicomSeries]:
    """The image series of ``files``."""
    return scan_dicom(files).series


def rotation(ax: float, ay: float, az: float) -> np.ndarray:
    """Right-handed rotation matrix from three angles (radians), shape (3, 3)."""
    cx, sx, cy, sy, cz, sz = np.cos(ax), np.sin(ax), np.cos(ay), np.sin(ay), np.cos(az), np.sin(az)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


DIRECTIONS = {
    "axial": np.eye(3),
    "oblique": rotation(0.3, -0.2, 0.5),
    "coronal": np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]]),  # rows along x, cols along -z
}


def make_image(direction: np.ndarray, *, seed: int = 0, size=(7, 6, 5)) -> sitk.Image:
    """Small float32 image with anisotropic spacing and the given direction."""
    rng = np.random.default_rng(seed)
    arr = rng.uniform(-50.0, 400.0, size[::-1]).astype(np.float32)
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((0.8, 1.3, 2.5))
    img.SetOrigin((-10.5, 20.25, -300.125))
    img.SetDirection(tuple(direction.ravel()))
    return img


def slope_of(files: dict[str, bytes]) -> float:
    """RescaleSlope of the first file."""
    ds = pydicom.dcmread(BytesIO(next(iter(files.values()))))
    return float(ds.RescaleSlope)


@pytest.mark.parametrize("name", sorted(DIRECTIONS))
def test_round_trip_geometry_and_values(name: str) -> None:
    img = make_image(DIRECTIONS[name])
    files = dicom_series(img)
    assert len(files) == img.GetSize()[2]
    items = list(files.items())
    random.Random(0).shuffle(items)  # order of files must not matter
    (series,) = series_of(items)
    assert_same_grid(series.image, img, tol=1e-4)
    assert series.image.GetPixelID() == sitk.sitkFloat32
    err = np.abs(sitk.GetArrayFromImage(series.image) - sitk.GetArrayFromImage(img))
    assert err.max() <= slope_of(files) / 2 * (1 + 1e-6) + 1e-5
    assert series.n_slices == img.GetSize()[2]
    assert series.series_description == "Dixon_noBH_in"
    assert series.series_number == 3
    assert series.modality == "MR"
    assert series.sop_class_uid == "1.2.840.10008.5.1.4.1.1.4"
    assert series.acquisition_time == "101500.000000"


def test_header_fields_and_folder_output(tmp_path: Path) -> None:
    img = make_image(DIRECTIONS["oblique"])
    names = write_series(
        img,
        tmp_path / "series",
        series_description="Dixon_BH_17s_W",
        series_number=7,
        series_uid="1.2.826.0.1.3680043.10.11",
        study_uid="1.2.826.0.1.3680043.10.12",
        frame_uid="1.2.826.0.1.3680043.10.13",
        participant_id="p-01",
        acquisition_time="093000",
    )
    paths = sorted((tmp_path / "series").iterdir())
    assert [p.name for p in paths] == sorted(names)
    assert all(n.endswith(".dcm") and n.startswith("1.2.826.0.1.3680043.10.11.") for n in names)
    ds = pydicom.dcmread(paths[0])
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert ds.file_meta.MediaStorageSOPClassUID == ds.SOPClassUID
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert ds.Modality == "MR"
    assert str(ds.PatientName) == "ANONYMOUS"
    assert ds.PatientID == "p-01"
    assert (ds.Rows, ds.Columns) == (img.GetSize()[1], img.GetSize()[0])
    # PixelSpacing = [between rows (y), between columns (x)]
    assert [float(v) for v in ds.PixelSpacing] == pytest.approx([1.3, 0.8])
    assert float(ds.SliceThickness) == pytest.approx(2.5)
    assert float(ds.SpacingBetweenSlices) == pytest.approx(2.5)
    assert (ds.BitsAllocated, ds.PixelRepresentation) == (16, 0)
    assert ds.SeriesTime == ds.AcquisitionTime == "093000"
    (series,) = series_of(paths)
    assert_same_grid(series.image, img, tol=1e-4)


def test_ipp_per_slice_and_instance_numbers() -> None:
    img = make_image(DIRECTIONS["oblique"])
    files = dicom_series(img)
    for data in files.values():
        ds = pydicom.dcmread(BytesIO(data))
        k = int(ds.InstanceNumber) - 1
        expected = img.TransformIndexToPhysicalPoint((0, 0, k))
        np.testing.assert_allclose([float(v) for v in ds.ImagePositionPatient], expected, atol=1e-6)
        d = np.asarray(img.GetDirection()).reshape(3, 3)
        iop = [float(v) for v in ds.ImageOrientationPatient]
        np.testing.assert_allclose(iop, np.concatenate([d[:, 0], d[:, 1]]), atol=1e-9)


def test_sorted_by_position_not_instance_number_or_name() -> None:
    img = make_image(DIRECTIONS["axial"])
    files = dicom_series(img)
    scrambled = []
    n = len(files)
    for i, data in enumerate(files.values()):
        ds = pydicom.dcmread(BytesIO(data))
        ds.InstanceNumber = n - i if i % 2 else (i * 7) % n + 1
        scrambled.append((f"{(i * 3) % n:03d}.dcm", encode(ds)))
    (series,) = series_of(scrambled)
    assert_same_grid(series.image, img, tol=1e-4)
    np.testing.assert_allclose(
        sitk.GetArrayFromImage(series.image), sitk.GetArrayFromImage(img), atol=slope_of(files)
    )


def test_left_handed_direction_keeps_physical_content() -> None:
    d = np.diag([1.0, 1.0, -1.0])  # slices stacked towards inferior: det = -1
    img = make_image(d)
    (series,) = series_of(list(dicom_series(img).items()))
    out = series.image
    assert np.linalg.det(np.asarray(out.GetDirection()).reshape(3, 3)) > 0
    back = sitk.Resample(out, img, sitk.Transform(), sitk.sitkNearestNeighbor, -1e6)
    np.testing.assert_allclose(
        sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(img), atol=slope_of(dicom_series(img))
    )


def test_explicit_rescale() -> None:
    img = make_image(DIRECTIONS["axial"])
    files = dicom_series(img, rescale=(0.5, -100.0))
    ds = pydicom.dcmread(BytesIO(next(iter(files.values()))))
    assert (float(ds.RescaleSlope), float(ds.RescaleIntercept)) == (0.5, -100.0)
    (series,) = series_of(list(files.items()))
    err = np.abs(sitk.GetArrayFromImage(series.image) - sitk.GetArrayFromImage(img))
    assert err.max() <= 0.25 + 1e-4
    with pytest.raises(ValueError, match="do not fit"):
        dicom_series(img, rescale=(0.001, 0.0))


def test_constant_image_round_trips() -> None:
    arr = np.full((3, 4, 5), 42.5, dtype=np.float32)
    img = sitk.GetImageFromArray(arr)
    (series,) = series_of(list(dicom_series(img).items()))
    np.testing.assert_allclose(sitk.GetArrayFromImage(series.image), arr)


def test_non_finite_values_rejected() -> None:
    arr = np.zeros((3, 4, 5), dtype=np.float32)
    arr[1, 2, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        dicom_series(sitk.GetImageFromArray(arr))


def test_two_series_grouped_by_uid() -> None:
    a = dicom_series(
        make_image(DIRECTIONS["axial"], seed=1), uid="1.2.826.0.1.3680043.10.21", number=5
    )
    b = dicom_series(
        make_image(DIRECTIONS["oblique"], seed=2), uid="1.2.826.0.1.3680043.10.22", number=4
    )
    items = list(a.items()) + list(b.items())
    random.Random(1).shuffle(items)
    series = series_of(items)
    assert [s.series_number for s in series] == [4, 5]
    assert [s.series_uid for s in series] == [
        "1.2.826.0.1.3680043.10.22",
        "1.2.826.0.1.3680043.10.21",
    ]


def test_duplicate_slices() -> None:
    files = list(dicom_series(make_image(DIRECTIONS["oblique"])).items())
    ds = pydicom.dcmread(BytesIO(files[1][1]))
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.InstanceNumber = 99
    files.append(("copy.dcm", encode(ds)))
    with pytest.raises(IngestError) as info:
        series_of(files)
    assert info.value.code == "DUPLICATE_SLICES"


def test_missing_slice_is_nonuniform() -> None:
    files = list(dicom_series(make_image(DIRECTIONS["axial"])).items())
    del files[2]
    with pytest.raises(IngestError) as info:
        series_of(files)
    assert info.value.code == "NONUNIFORM_SLICES"


def test_inconsistent_orientation_in_one_series() -> None:
    files = list(dicom_series(make_image(DIRECTIONS["axial"])).items())
    ds = pydicom.dcmread(BytesIO(files[0][1]))
    ds.ImageOrientationPatient = [0, 1, 0, 1, 0, 0]
    files[0] = (files[0][0], encode(ds))
    with pytest.raises(IngestError) as info:
        series_of(files)
    assert info.value.code == "INCONSISTENT_SERIES"


def test_nothing_identifying_is_returned() -> None:
    files = dicom_series(make_image(DIRECTIONS["axial"]))
    (series,) = series_of(list(files.items()))
    assert {f.name for f in dataclasses.fields(DicomSeries)} == {
        "series_uid",
        "series_description",
        "series_number",
        "acquisition_time",
        "modality",
        "sop_class_uid",
        "n_slices",
        "content_sha256",
        "files",
        "image",
    }
    assert series.image.GetMetaDataKeys() == ()
    assert "ANONYMOUS" not in repr(series) and "1000001" not in repr(series)


@pytest.mark.shared_data
def test_real_ct_series_matches_nifti_and_simpleitk() -> None:
    totalseg = shared_data("totalsegmentator")
    folder = totalseg / "example_ct_dicom"
    paths = sorted(folder.iterdir())
    (series,) = series_of(paths[::-1])
    img = series.image
    assert series.n_slices == 20 and series.modality == "CT"

    # The NIfTI converted by TotalSegmentator stores the rows flipped (direction y = -1):
    # compare in one orientation.
    nifti = sitk.DICOMOrient(sitk.ReadImage(str(totalseg / "example_seg_dicom.nii.gz")), "LPS")
    assert_same_grid(img, nifti, tol=1e-3)
    np.testing.assert_allclose(img.GetDirection(), nifti.GetDirection(), atol=1e-4)

    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    ref = reader.Execute()
    assert_same_grid(img, ref, tol=1e-3)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(img), sitk.GetArrayFromImage(ref))


def test_series_content_hash_and_file_order() -> None:
    img = make_image(DIRECTIONS["oblique"])
    files = dicom_series(img)
    items = list(files.items())
    (a,) = series_of(items)
    (b,) = series_of(items[::-1])
    assert a.content_sha256 == b.content_sha256 and a.files == b.files
    # independent: slices in position order = instance-number order for written series
    by_number = sorted(
        items,
        key=lambda kv: int(pydicom.dcmread(BytesIO(kv[1]), stop_before_pixels=True).InstanceNumber),
    )
    assert list(a.files) == [name for name, _ in by_number]
    lines = "".join(hashlib.sha256(data).hexdigest() + "\n" for _, data in by_number)
    assert a.content_sha256 == hashlib.sha256(lines.encode()).hexdigest()
    assert series_sha256(hashlib.sha256(d).hexdigest() for _, d in by_number) == a.content_sha256
    changed = dict(items)
    name = a.files[0]
    ds = pydicom.dcmread(BytesIO(changed[name]))
    ds.RescaleIntercept = str(float(ds.RescaleIntercept) + 1.0)
    changed[name] = encode(ds)
    (c,) = series_of(list(changed.items()))
    assert c.content_sha256 != a.content_sha256


def test_series_size_limit() -> None:
    img = make_image(DIRECTIONS["axial"])  # 7 x 6 x 5 = 210 voxels
    with pytest.raises(IngestError) as info:
        scan_dicom(list(dicom_series(img).items()), max_voxels=209)
    assert info.value.code == "IMAGE_TOO_LARGE"
    assert len(scan_dicom(list(dicom_series(img).items()), max_voxels=210).series) == 1
