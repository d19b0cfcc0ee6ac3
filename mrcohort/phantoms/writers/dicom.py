"""Write one 3D image as a DICOM MR series (phantoms and tests only).

Pixels are stored as uint16 with a rescale slope/intercept; UIDs are derived from the caller's
seeds, so the same image gives the same bytes. The reader is :mod:`mrcohort.io.dicom`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
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

__all__ = ["quantize", "write_series"]

_UINT16_MAX = 65535


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
