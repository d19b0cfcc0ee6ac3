"""Tests for mrcohort.io.dicom.header: the fast scan reads what pydicom reads, or declines.

Every file the scan accepts must give the same slice, pixels and series as pydicom's path
(the scan switched off); every file it does not fully understand must be left to pydicom.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from io import BytesIO

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.dataset import Dataset
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

import mrcohort.io.dicom.slices as slices_module
from mrcohort.errors import IngestError
from mrcohort.io.dicom import DicomSeries, read_slice, scan_dicom
from mrcohort.io.dicom.header import scan_header
from tests.builders import dicom_series, encode


def image(seed: int = 0, *, low: float = -50.0, high: float = 400.0) -> sitk.Image:
    """Small float32 oblique image, 7 x 6 x 5 voxels."""
    rng = np.random.default_rng(seed)
    img = sitk.GetImageFromArray(rng.uniform(low, high, (5, 6, 7)).astype(np.float32))
    img.SetSpacing((0.8, 1.3, 2.5))
    img.SetOrigin((-10.5, 20.25, -300.125))
    rot = np.linalg.qr(np.random.default_rng(3).normal(size=(3, 3)))[0]
    if np.linalg.det(rot) < 0:
        rot[:, 2] *= -1
    img.SetDirection(tuple(rot.ravel()))
    return img


def edited(files: dict[str, bytes], edit: Callable[[Dataset], None]) -> dict[str, bytes]:
    """Every file re-encoded (in its transfer syntax) after ``edit`` of its dataset."""
    out = {}
    for name, data in files.items():
        ds = pydicom.dcmread(BytesIO(data))
        edit(ds)
        out[name] = encode(ds)
    return out


def _set(**values: object) -> Callable[[Dataset], None]:
    def edit(ds: Dataset) -> None:
        for key, value in values.items():
            if value is None:
                if key in ds:
                    delattr(ds, key)
            else:
                setattr(ds, key, value)

    return edit


def _signed(ds: Dataset) -> None:
    ds.PixelRepresentation = 1
    ds.PixelData = (np.frombuffer(ds.PixelData, "<u2").astype(np.int32) - 30000).astype(
        "<i2"
    ).tobytes()


def _eight_bit(ds: Dataset) -> None:
    arr = np.frombuffer(ds.PixelData, "<u2") // 256
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelData = arr.astype("u1").tobytes()


def _exponents(ds: Dataset) -> None:
    ds.ImagePositionPatient = [f"{float(v):.8e}" for v in ds.ImagePositionPatient]
    ds.RescaleSlope = f"{float(ds.RescaleSlope):.6E}"


def _to_implicit(ds: Dataset) -> None:
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian


ACCEPTED: dict[str, Callable[[Dataset], None]] = {
    "explicit": lambda ds: None,
    "implicit": _to_implicit,
    "signed": _signed,
    "eight_bit": _eight_bit,
    "no_rescale": _set(RescaleSlope=None, RescaleIntercept=None),
    "zero_slope_negative_zero_intercept": _set(RescaleSlope="0", RescaleIntercept="-0"),
    "exponent_notation": _exponents,
    "no_acquisition_time": _set(AcquisitionTime=None),
    "one_frame": _set(NumberOfFrames="1"),
    "monochrome1": _set(PhotometricInterpretation="MONOCHROME1"),
    "bits_stored_12": _set(BitsStored=12, HighBit=11),  # high bits set: shifted out
    "signed_bits_stored_12": lambda ds: (_signed(ds), _set(BitsStored=12, HighBit=11)(ds)),
}


def pydicom_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(slices_module, "scan_header", lambda data: None)


def same_series(a: DicomSeries, b: DicomSeries) -> None:
    for f in dataclasses.fields(DicomSeries):
        if f.name != "image":
            assert getattr(a, f.name) == getattr(b, f.name), f.name
    for get in ("GetSize", "GetSpacing", "GetOrigin", "GetDirection", "GetPixelID"):
        assert getattr(a.image, get)() == getattr(b.image, get)(), get
    np.testing.assert_array_equal(
        sitk.GetArrayViewFromImage(a.image), sitk.GetArrayViewFromImage(b.image)
    )


@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_accepted_files_read_exactly_as_pydicom_reads_them(
    case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = edited(dicom_series(image()), ACCEPTED[case])
    assert all(scan_header(data) is not None for data in files.values())
    fast = scan_dicom(list(files.items()))
    pydicom_only(monkeypatch)
    slow = scan_dicom(list(files.items()))
    assert len(fast.series) == len(slow.series) == 1
    same_series(fast.series[0], slow.series[0])


@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_accepted_slice_equals_the_pydicom_slice(
    case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    name, data = next(iter(edited(dicom_series(image()), ACCEPTED[case]).items()))
    _, fast = read_slice((name, data))
    pydicom_only(monkeypatch)
    _, slow = read_slice((name, data))
    assert fast.header is not None and slow.header is None  # type: ignore[union-attr]
    for key in ("row", "col", "ipp"):
        np.testing.assert_array_equal(getattr(fast, key), getattr(slow, key))
    for key in ("pixel_spacing", "rows", "columns", "sha256", "series_uid", "acquisition_time"):
        assert getattr(fast, key) == getattr(slow, key), key
    assert fast.rescale() == slow.rescale()  # type: ignore[union-attr]
    np.testing.assert_array_equal(fast.pixels(), slow.pixels())  # type: ignore[union-attr]
    assert fast.ds.SOPInstanceUID == slow.ds.SOPInstanceUID  # type: ignore[union-attr]


def _truncated(data: bytes) -> bytes:
    return data[:-10]


DECLINED: dict[str, Callable[[Dataset], None]] = {
    "deflated": lambda ds: setattr(
        ds.file_meta, "TransferSyntaxUID", DeflatedExplicitVRLittleEndian
    ),
    "bits_stored_above_allocated": _set(BitsStored=20),
    "no_photometric": _set(PhotometricInterpretation=None),
    "two_frames": _set(NumberOfFrames="2"),
    "no_geometry": _set(ImagePositionPatient=None),
    "two_slopes": _set(RescaleSlope=["1", "2"]),
    "uid_with_space": _set(SeriesInstanceUID="1.2.3 4"),
    "no_sop_class": _set(SOPClassUID=None),
    "infinite_position": _set(ImagePositionPatient=["inf", "0", "0"]),
}


@pytest.mark.filterwarnings("ignore:Invalid value for VR")
@pytest.mark.parametrize("case", sorted(DECLINED))
def test_unusual_files_are_left_to_pydicom(case: str) -> None:
    data = next(iter(edited(dicom_series(image()), DECLINED[case]).values()))
    assert scan_header(data) is None


def test_big_endian_is_left_to_pydicom() -> None:
    data = next(iter(dicom_series(image()).values()))
    little, big_uid = ExplicitVRLittleEndian.encode(), ExplicitVRBigEndian.encode()
    big = data.replace(little + b"\0", big_uid + b"\0")  # same length: a valid file meta
    assert big != data and scan_header(big) is None


@pytest.mark.filterwarnings("ignore:Invalid value for VR")
def test_a_number_that_does_not_parse_is_pydicoms_error() -> None:
    files = dicom_series(image())
    name, data = next(iter(files.items()))
    bad = data.replace(b"1.3\\0.8", b"1,3\\0.8")  # PixelSpacing, same length
    assert bad != data and scan_header(bad) is None
    with pytest.raises(IngestError) as info:
        scan_dicom([(name, bad)])
    assert info.value.code == "DICOM_UNREADABLE"


def test_truncated_and_foreign_bytes_are_left_to_pydicom() -> None:
    data = next(iter(dicom_series(image()).values()))
    for cut in (len(data) - 10, len(data) // 2, 200, 131):
        assert scan_header(data[:cut]) is None
    assert scan_header(b"\0" * 128 + b"DICM") is None
    assert scan_header(b"not DICOM at all" * 20) is None


def _with_sequences(ds: Dataset) -> None:
    """A nested sequence of undefined length, holding items of defined and undefined
    length, and a sequence of defined length."""
    inner = Dataset()
    inner.CodeValue = "T-D0050"
    outer = Dataset()
    outer.ReferencedSOPInstanceUID = "1.2.3.4"
    outer.ConceptNameCodeSequence = [inner]
    outer["ConceptNameCodeSequence"].is_undefined_length = True
    outer.is_undefined_length_sequence_item = True
    second = Dataset()
    second.ReferencedSOPInstanceUID = "1.2.3.5"
    ds.ReferencedImageSequence = [outer, second]
    ds["ReferencedImageSequence"].is_undefined_length = True
    ds.ProcedureCodeSequence = [inner]


@pytest.mark.parametrize("implicit", [False, True])
def test_sequences_of_undefined_length_are_stepped_over(
    implicit: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    def edit(ds: Dataset) -> None:
        _with_sequences(ds)
        if implicit:
            _to_implicit(ds)

    files = edited(dicom_series(image()), edit)
    assert b"\xfe\xff\xdd\xe0" in next(iter(files.values()))  # a sequence delimiter
    assert all(scan_header(data) is not None for data in files.values())
    fast = scan_dicom(list(files.items()))
    pydicom_only(monkeypatch)
    same_series(fast.series[0], scan_dicom(list(files.items())).series[0])


def test_a_sequence_without_its_delimiter_is_left_to_pydicom() -> None:
    data = next(iter(edited(dicom_series(image()), _with_sequences).values()))
    broken = data.replace(b"\xfe\xff\xdd\xe0", b"\xfe\xff\xdd\xe1")
    assert broken != data and scan_header(broken) is None
