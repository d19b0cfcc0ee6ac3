"""Write one 3D image as a DICOM MR series; read DICOM files back into volumes (pydicom).

Geometry follows DICOM / ITK (LPS, mm):

* ``ImageOrientationPatient`` (IOP) holds the row direction (direction of increasing column
  index, SimpleITK axis x) and then the column direction (increasing row index, axis y).
* The slice normal is ``cross(row, col)``; slices are ordered by the projection of
  ``ImagePositionPatient`` (IPP) on it — never by file name or ``InstanceNumber``.
* ``PixelSpacing`` is ``[spacing between rows (y), spacing between columns (x)]``.

Error codes (:class:`~mrcohort.errors.IngestError`) raised here:

``DICOM_UNREADABLE``
    A file is not DICOM, is truncated, or its pixel data cannot be decoded.
``DICOM_UNSUPPORTED``
    Multi-frame objects (one file holding a whole volume).
``INCONSISTENT_SERIES``
    Slices of one series disagree on matrix size, pixel spacing or orientation.
``DUPLICATE_SLICES``
    Two slices of one series at the same position.
``NONUNIFORM_SLICES``
    Slice positions are not a regular lattice along the normal (missing slice, variable
    gap, gantry tilt / shear).
``IMAGE_TOO_LARGE``
    A series would exceed ``max_voxels`` (checked from the headers, before the volume is
    allocated).

Objects without pixel data (structured reports, encapsulated PDF, presentation states),
colour images and images without plane geometry are not errors: they are skipped and listed
in :attr:`DicomScan.ignored`.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    ExplicitVRLittleEndian,
    MRImageStorage,
    generate_uid,
)
from pydicom.valuerep import format_number_as_ds

from mrcohort.errors import IngestError

__all__ = [
    "DicomScan",
    "DicomSeries",
    "DicomSource",
    "quantize",
    "read_series",
    "scan_dicom",
    "series_sha256",
    "slice_lattice",
    "write_series",
]

log = logging.getLogger(__name__)

#: One input file: a path, or ``(name, bytes)`` (e.g. a zip member read into memory).
DicomSource = str | os.PathLike[str] | tuple[str, bytes]

_UINT16_MAX = 65535
#: Two slices closer than this along the normal are the same slice (mm).
_DUPLICATE_TOL_MM = 1e-2
#: Allowed deviation of one slice gap from the mean gap: absolute (mm) plus relative.
_GAP_TOL_MM = 1e-2
_GAP_TOL_REL = 1e-2
#: Allowed disagreement of orientation cosines / pixel spacing between slices of a series.
_IOP_TOL = 1e-4
_SPACING_TOL_MM = 1e-4


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class DicomSeries:
    """One DICOM series read into a volume.

    Only technical, non-identifying header fields are kept.

    Attributes
    ----------
    series_uid
        SeriesInstanceUID (0020,000E).
    series_description
        SeriesDescription (0008,103E); ``""`` when absent.
    series_number
        SeriesNumber (0020,0011); ``None`` when absent.
    acquisition_time
        Earliest AcquisitionTime (0008,0032) of the slices, else SeriesTime; ``""`` if none.
    modality
        Modality (0008,0060), e.g. ``"MR"``.
    sop_class_uid
        SOPClassUID (0008,0016).
    n_slices
        Number of slices (files) in the series.
    content_sha256
        sha256 (hex) of the series' input: the sha256 of the text made of each slice
        file's sha256 (hex) plus a newline, in slice order (see :func:`series_sha256`).
    files
        Names of the slice files (paths or zip member names), in slice order.
    image
        float32 volume after RescaleSlope/Intercept, LPS geometry from IPP/IOP.
    """

    series_uid: str
    series_description: str
    series_number: int | None
    acquisition_time: str
    modality: str
    sop_class_uid: str
    n_slices: int
    content_sha256: str
    files: tuple[str, ...] = field(repr=False)
    image: sitk.Image = field(repr=False, compare=False)


@dataclass(frozen=True)
class DicomScan:
    """Result of :func:`scan_dicom`: the image series and what was skipped.

    Attributes
    ----------
    series
        Image series, sorted by (series number, series UID).
    ignored
        ``(file or series name, reason)`` for every object that was skipped.
    n_image_files
        Number of image files found (including those of series not selected).
    """

    series: list[DicomSeries]
    ignored: list[tuple[str, str]]
    n_image_files: int


@dataclass(frozen=True)
class _Slice:
    """Header summary of one image file, plus its dataset (pixels decoded later)."""

    name: str
    ds: Dataset
    row: np.ndarray
    col: np.ndarray
    ipp: np.ndarray
    pixel_spacing: tuple[float, float]
    rows: int
    columns: int
    sha256: str


# --------------------------------------------------------------------------- writing


def _ds(value: float) -> str:
    """Format a number as a DICOM DS string (at most 16 characters)."""
    return format_number_as_ds(float(value))


def _ds_list(values: Sequence[float] | np.ndarray) -> list[str]:
    """Format several numbers as DS strings."""
    return [_ds(v) for v in values]


def _right_handed(img: sitk.Image) -> sitk.Image:
    """Return ``img`` with a right-handed direction (flip z, same physical content)."""
    d = np.asarray(img.GetDirection(), dtype=float).reshape(3, 3)
    if np.linalg.det(d) > 0:
        return img
    return sitk.Flip(img, [False, False, True])


def quantize(
    values: np.ndarray, rescale: tuple[float, float] | None
) -> tuple[np.ndarray, float, float]:
    """Map float values onto uint16 with a slope/intercept that survive DS formatting.

    Parameters
    ----------
    values : ndarray of float, any shape
        Finite values.
    rescale
        ``(slope, intercept)``; ``None`` chooses them from the value range so that the
        range spans 0..65535.

    Returns
    -------
    raw : ndarray of uint16, same shape
    slope, intercept : float
        As written to the header (already DS-rounded); ``raw * slope + intercept``
        reproduces ``values`` to within ``slope / 2``.
    """
    if not np.all(np.isfinite(values)):
        raise ValueError("image holds NaN or infinite values; DICOM cannot store them")
    if rescale is None:
        lo = float(values.min()) if values.size else 0.0
        hi = float(values.max()) if values.size else 0.0
        slope = float(_ds((hi - lo) / _UINT16_MAX)) if hi > lo else 1.0
        intercept = float(_ds(lo))  # DS rounding (~1e-14 relative) is absorbed by clipping
    else:
        slope, intercept = float(_ds(rescale[0])), float(_ds(rescale[1]))
        if not slope > 0:
            raise ValueError(f"rescale slope must be > 0, got {rescale[0]}")
    raw = np.rint((values - intercept) / slope)
    if rescale is not None and values.size and (raw.min() < 0 or raw.max() > _UINT16_MAX):
        raise ValueError(
            f"values {values.min():g}..{values.max():g} do not fit uint16 with "
            f"slope={slope:g}, intercept={intercept:g}"
        )
    return np.clip(raw, 0, _UINT16_MAX).astype("<u2"), slope, intercept


def _instance_uid(series_uid: str, number: int) -> str:
    """Deterministic SOPInstanceUID for slice ``number`` of a series."""
    candidate = f"{series_uid}.{number}"
    if len(candidate) <= 64:
        return candidate
    return str(generate_uid(entropy_srcs=[series_uid, str(number)]))


def _check_uid(uid: str, what: str) -> str:
    """Raise ValueError unless ``uid`` is a valid DICOM UID."""
    if not UID(uid).is_valid:
        raise ValueError(f"{what} is not a valid DICOM UID: {uid!r}")
    return uid


def _slice_dataset(
    *,
    pixels: np.ndarray,
    ipp: np.ndarray,
    iop: np.ndarray,
    spacing_xyz: tuple[float, float, float],
    slice_location: float,
    number: int,
    slope: float,
    intercept: float,
    header: Mapping[str, Any],
) -> Dataset:
    """Build the dataset of one MR slice (file meta included)."""
    sop_uid = _instance_uid(header["SeriesInstanceUID"], number)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID

    ds = Dataset()
    ds.file_meta = meta
    ds.preamble = b"\0" * 128
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["DERIVED", "PRIMARY"]
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = sop_uid
    for key, value in header.items():
        setattr(ds, key, value)
    ds.InstanceNumber = number
    ds.ImagePositionPatient = _ds_list(ipp)
    ds.ImageOrientationPatient = _ds_list(iop)
    ds.SliceLocation = _ds(slice_location)
    ds.PixelSpacing = _ds_list([spacing_xyz[1], spacing_xyz[0]])  # [row (y), column (x)]
    ds.SliceThickness = _ds(spacing_xyz[2])
    ds.SpacingBetweenSlices = _ds(spacing_xyz[2])
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = int(pixels.shape[0]), int(pixels.shape[1])
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.RescaleIntercept = _ds(intercept)
    ds.RescaleSlope = _ds(slope)
    ds.RescaleType = "US"
    ds.PixelData = np.ascontiguousarray(pixels, dtype="<u2").tobytes()
    return ds


def _encode(ds: Dataset) -> bytes:
    """Serialise a dataset as a DICOM Part 10 file (explicit VR little endian)."""
    buf = BytesIO()
    pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()


def write_series(
    img: sitk.Image,
    out: dict[str, bytes] | str | os.PathLike[str],
    *,
    series_description: str,
    series_number: int,
    series_uid: str,
    study_uid: str,
    frame_uid: str,
    participant_id: str,
    acquisition_time: str,
    rescale: tuple[float, float] | None = None,
) -> list[str]:
    """Write a 3D float image as an MR Image Storage series, one file per slice.

    Pixels are stored as uint16 with RescaleSlope/RescaleIntercept, so values read back
    within half a quantisation step (``slope / 2``). Geometry (IPP per slice, IOP, pixel
    spacing, slice spacing) reproduces the image's origin, spacing and direction; an image
    with a left-handed direction is first flipped along z (same physical content), since a
    DICOM series is always stacked along ``cross(row, col)``.

    Parameters
    ----------
    img : sitk.Image, 3D scalar
        Any pixel type; values must be finite.
    out
        A dict (file name -> file bytes are added, to be zipped by the caller) or a folder
        (created if needed; files written there).
    series_description, series_number, series_uid, study_uid, frame_uid
        Series / study identification; UIDs must be valid DICOM UIDs.
    participant_id
        Written as PatientID. PatientName is always ``"ANONYMOUS"``.
    acquisition_time
        DICOM TM string (``HHMMSS`` or ``HHMMSS.ffffff``), written as SeriesTime and
        AcquisitionTime.
    rescale
        ``(slope, intercept)``; ``None`` spans the image's value range over 0..65535.

    Returns
    -------
    list of str
        File names written, ``<SOPInstanceUID>.dcm``, in slice order.
    """
    if img.GetDimension() != 3 or img.GetNumberOfComponentsPerPixel() != 1:
        raise ValueError("write_series needs a 3D scalar image")
    for uid, what in (
        (series_uid, "series_uid"),
        (study_uid, "study_uid"),
        (frame_uid, "frame_uid"),
    ):
        _check_uid(uid, what)
    img = _right_handed(img)
    arr = sitk.GetArrayViewFromImage(img).astype(np.float64)  # (z, y, x)
    raw, slope, intercept = quantize(arr, rescale)

    d = np.asarray(img.GetDirection(), dtype=float).reshape(3, 3)
    iop = np.concatenate([d[:, 0], d[:, 1]])
    normal = d[:, 2]
    sx, sy, sz = (float(v) for v in img.GetSpacing())
    header: dict[str, Any] = {
        "PatientName": "ANONYMOUS",
        "PatientID": participant_id,
        "PatientBirthDate": "",
        "PatientSex": "",
        "StudyInstanceUID": study_uid,
        "StudyDate": "",
        "StudyTime": acquisition_time,
        "StudyID": "1",
        "AccessionNumber": "",
        "ReferringPhysicianName": "",
        "Modality": "MR",
        "SeriesInstanceUID": series_uid,
        "SeriesNumber": int(series_number),
        "SeriesDescription": series_description,
        "SeriesTime": acquisition_time,
        "AcquisitionTime": acquisition_time,
        "ContentTime": acquisition_time,
        "FrameOfReferenceUID": frame_uid,
        "PositionReferenceIndicator": "",
        "ScanningSequence": "GR",
        "SequenceVariant": "SP",
        "ScanOptions": "",
        "MRAcquisitionType": "3D",
        "RepetitionTime": "",
        "EchoTime": "",
        "EchoTrainLength": "",
    }
    files: dict[str, bytes] = {}
    for k in range(raw.shape[0]):
        ipp = np.asarray(img.TransformIndexToPhysicalPoint((0, 0, k)), dtype=float)
        ds = _slice_dataset(
            pixels=raw[k],
            ipp=ipp,
            iop=iop,
            spacing_xyz=(sx, sy, sz),
            slice_location=float(ipp @ normal),
            number=k + 1,
            slope=slope,
            intercept=intercept,
            header=header,
        )
        files[f"{ds.SOPInstanceUID}.dcm"] = _encode(ds)

    if isinstance(out, dict):
        out.update(files)
    else:
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            tmp = folder / f".tmp-{name}"
            tmp.write_bytes(data)
            os.replace(tmp, folder / name)
    return list(files)


# --------------------------------------------------------------------------- reading


def _load(source: DicomSource) -> tuple[str, Dataset, str]:
    """Parse one file (path or ``(name, bytes)``) -> ``(name, dataset, sha256 hex)``.

    Raises IngestError DICOM_UNREADABLE on failure, FILE_NOT_FOUND if a path vanished.
    """
    if isinstance(source, tuple):
        name, data = source
    else:
        name = os.fspath(source)
        try:
            data = Path(name).read_bytes()
        except FileNotFoundError as exc:
            raise IngestError("FILE_NOT_FOUND", f"{name} does not exist") from exc
    digest = hashlib.sha256(data).hexdigest()
    try:
        ds = pydicom.dcmread(BytesIO(data))
    except Exception as exc:  # pydicom raises many types on corrupt input
        raise IngestError("DICOM_UNREADABLE", f"{name}: {type(exc).__name__}: {exc}") from exc
    problem = _truncation(ds)
    if problem:
        raise IngestError("DICOM_UNREADABLE", f"{name}: truncated file ({problem})")
    return name, ds, digest


def series_sha256(file_sha256: Iterable[str]) -> str:
    """Content hash of a series: sha256 of each slice file's sha256 hex + newline, in order."""
    h = hashlib.sha256()
    for digest in file_sha256:
        h.update(f"{digest}\n".encode("ascii"))
    return h.hexdigest()


def _is_image_class(sop_class_uid: str) -> bool:
    """Whether a SOP class is an image storage class (CT, MR, secondary capture, ...)."""
    return UID(sop_class_uid).name.endswith("Image Storage")


def _truncation(ds: Dataset) -> str:
    """Why a parsed dataset looks truncated; ``""`` if it does not.

    pydicom stops quietly at the end of the data, so a cut file parses as a shorter
    dataset: the last element's value is shorter than its declared length, or the dataset
    ends before the attributes its file meta / image header promise.
    """
    tags = list(ds.keys())
    if not tags:
        return "no data elements after the file meta"
    last = ds.get_item(tags[-1])
    length = getattr(last, "length", None)
    value = getattr(last, "value", None)
    if (
        isinstance(length, int)
        and length != 0xFFFFFFFF
        and isinstance(value, bytes)
        and len(value) < length
    ):
        return f"element {tags[-1]} holds {len(value)} of {length} bytes"
    meta_class = str(getattr(getattr(ds, "file_meta", None), "MediaStorageSOPClassUID", ""))
    sop_class = str(ds.get("SOPClassUID", "") or meta_class)
    if meta_class and "SOPClassUID" not in ds:
        return "SOPClassUID missing"
    if "PixelData" not in ds and ("Rows" in ds or (sop_class and _is_image_class(sop_class))):
        return "image object without pixel data"
    return ""


def _expected_pixel_bytes(ds: Dataset) -> int | None:
    """Bytes the (native, uncompressed) PixelData must hold; ``None`` if compressed."""
    tsyntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if tsyntax is not None and UID(tsyntax).is_compressed:
        return None
    bits = int(ds.get("BitsAllocated", 16))
    n = int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel", 1))
    n *= int(ds.get("NumberOfFrames", 1) or 1)
    return (n * bits + 7) // 8


def _unit(v: np.ndarray) -> np.ndarray:
    """Normalise a vector."""
    return v / np.linalg.norm(v)


def _as_slice(name: str, ds: Dataset, sha256: str) -> _Slice | str:
    """Summarise an image file, or return the reason it is skipped."""
    if "PixelData" not in ds:
        return f"no pixel data (SOP class {ds.get('SOPClassUID', '?')})"
    if int(ds.get("SamplesPerPixel", 1)) != 1:
        return "not a greyscale image (SamplesPerPixel != 1)"
    try:
        rows, columns = int(ds.Rows), int(ds.Columns)
        expected = _expected_pixel_bytes(ds)
    except (AttributeError, TypeError, ValueError) as exc:
        raise IngestError("DICOM_UNREADABLE", f"{name}: bad image header: {exc}") from exc
    if expected is not None and len(ds.PixelData) < expected:
        raise IngestError(
            "DICOM_UNREADABLE",
            f"{name}: pixel data truncated ({len(ds.PixelData)} of {expected} bytes)",
        )
    if int(ds.get("NumberOfFrames", 1) or 1) > 1:
        raise IngestError("DICOM_UNSUPPORTED", f"{name}: multi-frame objects are not supported")
    if not all(
        k in ds for k in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing")
    ):
        return "no image plane geometry (ImagePositionPatient/Orientation, PixelSpacing)"
    try:
        iop = np.asarray([float(v) for v in ds.ImageOrientationPatient], dtype=float)
        ipp = np.asarray([float(v) for v in ds.ImagePositionPatient], dtype=float)
        ps = tuple(float(v) for v in ds.PixelSpacing)
    except (TypeError, ValueError) as exc:
        raise IngestError("DICOM_UNREADABLE", f"{name}: bad geometry: {exc}") from exc
    if iop.shape != (6,) or ipp.shape != (3,) or len(ps) != 2 or min(ps) <= 0:
        raise IngestError("DICOM_UNREADABLE", f"{name}: malformed IPP/IOP/PixelSpacing")
    row, col = iop[:3], iop[3:]
    if min(np.linalg.norm(row), np.linalg.norm(col)) < 0.5 or abs(_unit(row) @ _unit(col)) > 1e-3:
        raise IngestError("DICOM_UNREADABLE", f"{name}: ImageOrientationPatient not orthonormal")
    row = _unit(row)
    col = _unit(col - (col @ row) * row)
    return _Slice(name, ds, row, col, ipp, (ps[0], ps[1]), rows, columns, sha256)


def _check_consistent(uid: str, slices: list[_Slice]) -> None:
    """All slices of a series share matrix size, pixel spacing and orientation."""
    first = slices[0]
    for s in slices[1:]:
        if (s.rows, s.columns) != (first.rows, first.columns):
            raise IngestError("INCONSISTENT_SERIES", f"series {uid}: slices differ in matrix size")
        if np.max(np.abs(np.subtract(s.pixel_spacing, first.pixel_spacing))) > _SPACING_TOL_MM:
            raise IngestError("INCONSISTENT_SERIES", f"series {uid}: slices differ in PixelSpacing")
        if max(np.max(np.abs(s.row - first.row)), np.max(np.abs(s.col - first.col))) > _IOP_TOL:
            raise IngestError(
                "INCONSISTENT_SERIES", f"series {uid}: slices differ in ImageOrientationPatient"
            )


def slice_lattice(
    positions: np.ndarray, row: np.ndarray, col: np.ndarray, *, label: str = "series"
) -> tuple[np.ndarray, float]:
    """Order slice positions along the normal and check they form a regular lattice.

    Parameters
    ----------
    positions : ndarray, shape (n, 3)
        ImagePositionPatient of each slice (mm, LPS), in any order.
    row, col : ndarray, shape (3,)
        Unit row and column direction cosines.
    label
        Used in error messages.

    Returns
    -------
    order : ndarray of int, shape (n,)
        Indices that sort the slices along ``cross(row, col)``.
    spacing_mm : float
        Mean distance between consecutive slices; ``nan`` for a single slice.
    """
    normal = np.cross(row, col)
    along = positions @ normal
    order = np.argsort(along, kind="stable")
    if len(order) < 2:
        return order, float("nan")
    gaps = np.diff(along[order])
    if np.any(gaps < _DUPLICATE_TOL_MM):
        k = int(np.argmax(gaps < _DUPLICATE_TOL_MM))
        raise IngestError(
            "DUPLICATE_SLICES",
            f"{label}: two slices at position {along[order][k]:.3f} mm along the normal",
        )
    mean_gap = float(np.mean(gaps))
    if np.max(np.abs(gaps - mean_gap)) > _GAP_TOL_MM + _GAP_TOL_REL * mean_gap:
        raise IngestError(
            "NONUNIFORM_SLICES",
            f"{label}: slice gaps vary from {gaps.min():.4f} to {gaps.max():.4f} mm "
            "(missing slice?)",
        )
    offsets = positions[order] - positions[order][0]
    shear = np.abs(offsets @ np.stack([row, col], axis=1))
    if np.max(shear) > _GAP_TOL_MM + _GAP_TOL_REL * mean_gap:
        raise IngestError(
            "NONUNIFORM_SLICES",
            f"{label}: slices shifted in-plane by up to {np.max(shear):.3f} mm "
            "(gantry tilt or shear)",
        )
    return order, mean_gap


def _pixels(s: _Slice) -> np.ndarray:
    """Decoded, rescaled pixels of one slice, shape (rows, columns), float64."""
    try:
        arr = np.asarray(s.ds.pixel_array, dtype=np.float64)
    except Exception as exc:  # decoder errors come in many types
        raise IngestError("DICOM_UNREADABLE", f"{s.name}: cannot decode pixel data: {exc}") from exc
    if arr.shape != (s.rows, s.columns):
        raise IngestError("DICOM_UNREADABLE", f"{s.name}: pixel array shape {arr.shape}")
    slope = float(s.ds.get("RescaleSlope", 1.0) or 1.0)
    intercept = float(s.ds.get("RescaleIntercept", 0.0) or 0.0)
    return arr * slope + intercept


def _first_text(slices: list[_Slice], keyword: str) -> str:
    """First non-empty value of a text attribute among the slices."""
    for s in slices:
        value = s.ds.get(keyword)
        if value not in (None, ""):
            return str(value)
    return ""


def _build_series(uid: str, slices: list[_Slice], *, max_voxels: int | None) -> DicomSeries:
    """Sort, check and stack the slices of one series into a float32 volume."""
    _check_consistent(uid, slices)
    first = slices[0]
    n_voxels = first.rows * first.columns * len(slices)
    if max_voxels is not None and n_voxels > max_voxels:
        raise IngestError(
            "IMAGE_TOO_LARGE",
            f"series {uid}: {first.columns} x {first.rows} x {len(slices)} = {n_voxels} voxels "
            f"exceeds the limit of {max_voxels}",
        )
    positions = np.stack([s.ipp for s in slices])
    order, gap = slice_lattice(positions, first.row, first.col, label=f"series {uid}")
    ordered = [slices[i] for i in order]
    if np.isnan(gap):
        gap = float(first.ds.get("SpacingBetweenSlices", 0) or 0) or float(
            first.ds.get("SliceThickness", 1.0) or 1.0
        )
    volume = np.stack([_pixels(s) for s in ordered]).astype(np.float32)  # (z, y, x)
    img = sitk.GetImageFromArray(volume)
    img.SetOrigin(tuple(float(v) for v in ordered[0].ipp))
    img.SetSpacing((first.pixel_spacing[1], first.pixel_spacing[0], gap))
    normal = np.cross(first.row, first.col)
    img.SetDirection(tuple(float(v) for v in np.stack([first.row, first.col, normal], 1).ravel()))

    times = sorted(str(t) for s in slices if (t := s.ds.get("AcquisitionTime")))
    number = first.ds.get("SeriesNumber")
    return DicomSeries(
        series_uid=uid,
        series_description=str(first.ds.get("SeriesDescription", "") or ""),
        series_number=int(number) if number not in (None, "") else None,
        acquisition_time=times[0] if times else _first_text(slices, "SeriesTime"),
        modality=str(first.ds.get("Modality", "") or ""),
        sop_class_uid=str(
            first.ds.get("SOPClassUID", "")
            or getattr(getattr(first.ds, "file_meta", None), "MediaStorageSOPClassUID", "")
            or ""
        ),
        n_slices=len(slices),
        content_sha256=series_sha256(s.sha256 for s in ordered),
        files=tuple(s.name for s in ordered),
        image=img,
    )


def _series_key(s: _Slice) -> str:
    """Grouping key: SeriesInstanceUID, or (when anonymisation blanked it) a key made of
    technical fields that one series shares."""
    uid = str(s.ds.get("SeriesInstanceUID", "") or "")
    if uid:
        return uid
    parts = [
        str(s.ds.get(k, "") or "")
        for k in ("FrameOfReferenceUID", "SeriesNumber", "SeriesDescription", "Modality")
    ]
    parts += [str(s.rows), str(s.columns), ",".join(f"{v:.3f}" for v in (*s.row, *s.col))]
    return "no-uid:" + "|".join(parts)


def scan_dicom(
    files: Iterable[DicomSource],
    *,
    description_filter: Callable[[str], bool] | None = None,
    max_voxels: int | None = None,
) -> DicomScan:
    """Read DICOM files, group them by SeriesInstanceUID and build one volume per series.

    Parameters
    ----------
    files
        Paths, or ``(name, bytes)`` pairs (zip members read into memory); any iterable,
        consumed once.
    description_filter
        When given, only series whose SeriesDescription passes it are built (pixels of the
        others are never decoded); the others are listed in ``ignored``.
    max_voxels
        Refuse (``IMAGE_TOO_LARGE``) a series with more voxels, before stacking it.

    Returns
    -------
    DicomScan
        The series (sorted by series number, then UID) and the skipped objects.

    Notes
    -----
    Files whose SeriesInstanceUID was blanked (some anonymisers) are grouped by frame of
    reference, series number, description, modality, matrix size and orientation; their
    ``series_uid`` is ``""``.

    Raises
    ------
    IngestError
        ``DICOM_UNREADABLE``, ``DICOM_UNSUPPORTED``, ``INCONSISTENT_SERIES``,
        ``DUPLICATE_SLICES``, ``NONUNIFORM_SLICES``, ``IMAGE_TOO_LARGE`` (see module
        docstring); ``FILE_NOT_FOUND`` when a path vanished.
    """
    groups: dict[str, list[_Slice]] = {}
    ignored: list[tuple[str, str]] = []
    n_image_files = 0
    for source in files:
        name, ds, digest = _load(source)
        summary = _as_slice(name, ds, digest)
        if isinstance(summary, str):
            ignored.append((name, summary))
            continue
        n_image_files += 1
        groups.setdefault(_series_key(summary), []).append(summary)

    series: list[DicomSeries] = []
    for key, slices in groups.items():
        uid = str(slices[0].ds.get("SeriesInstanceUID", "") or "")
        description = str(slices[0].ds.get("SeriesDescription", "") or "")
        if description_filter is not None and not description_filter(description):
            ignored.append((f"series {uid or key}", f"description {description!r} not selected"))
            continue
        series.append(_build_series(uid, slices, max_voxels=max_voxels))
    series.sort(
        key=lambda s: (s.series_number if s.series_number is not None else -1, s.series_uid)
    )
    return DicomScan(series=series, ignored=ignored, n_image_files=n_image_files)


def read_series(
    files: Iterable[DicomSource],
    *,
    description_filter: Callable[[str], bool] | None = None,
) -> list[DicomSeries]:
    """Read DICOM files into one :class:`DicomSeries` per SeriesInstanceUID.

    Same as :func:`scan_dicom` but returns only the series; skipped objects are logged at
    INFO level.

    Parameters
    ----------
    files
        Paths, or ``(name, bytes)`` pairs.
    description_filter
        Optional predicate on SeriesDescription selecting the series to build.

    Returns
    -------
    list of DicomSeries
    """
    result = scan_dicom(files, description_filter=description_filter)
    for name, reason in result.ignored:
        log.info("ignored %s: %s", name, reason)
    return result.series
