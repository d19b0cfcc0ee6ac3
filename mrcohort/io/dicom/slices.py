"""One DICOM file (pydicom): parse it, check it is whole, summarise its slice geometry.

Geometry follows DICOM / ITK (LPS, mm):

* ``ImageOrientationPatient`` (IOP) holds the row direction (direction of increasing column
  index, SimpleITK axis x) and then the column direction (increasing row index, axis y).
* ``PixelSpacing`` is ``[spacing between rows (y), spacing between columns (x)]``.

Objects without pixel data (structured reports, encapsulated PDF, presentation states),
colour images and images without plane geometry are not errors: :func:`read_slice` returns
the reason they are skipped. Errors (:class:`~mrcohort.errors.IngestError`):
``DICOM_UNREADABLE`` (not DICOM, truncated, undecodable pixels), ``DICOM_UNSUPPORTED``
(multi-frame objects), ``FILE_NOT_FOUND`` (a path vanished).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import numpy as np
import pydicom
import pydicom.misc
from pydicom.dataset import Dataset
from pydicom.uid import UID

from mrcohort.errors import IngestError

__all__ = ["DicomSlice", "DicomSource", "is_dicom_file", "read_slice"]

#: One input file: a path, or ``(name, bytes)`` (e.g. a zip member read into memory).
DicomSource = str | os.PathLike[str] | tuple[str, bytes]


@dataclass(frozen=True)
class DicomSlice:
    """Header summary of one image file, plus its dataset (pixels decoded on demand).

    Attributes
    ----------
    name
        Path or zip member name.
    ds
        The parsed dataset.
    row, col
        Unit row and column direction cosines (orthonormalised), shape (3,).
    ipp
        ImagePositionPatient (mm, LPS), shape (3,).
    pixel_spacing
        ``(between rows, between columns)`` in mm.
    rows, columns
        Matrix size.
    sha256
        Hex sha256 of the file's bytes.
    """

    name: str
    ds: Dataset
    row: np.ndarray
    col: np.ndarray
    ipp: np.ndarray
    pixel_spacing: tuple[float, float]
    rows: int
    columns: int
    sha256: str

    def pixels(self) -> np.ndarray:
        """Decoded, rescaled pixels, shape (rows, columns), float64."""
        try:
            arr = np.asarray(self.ds.pixel_array, dtype=np.float64)
        except Exception as exc:  # decoder errors come in many types
            raise IngestError(
                "DICOM_UNREADABLE", f"{self.name}: cannot decode pixel data: {exc}"
            ) from exc
        if arr.shape != (self.rows, self.columns):
            raise IngestError("DICOM_UNREADABLE", f"{self.name}: pixel array shape {arr.shape}")
        slope = float(self.ds.get("RescaleSlope", 1.0) or 1.0)
        intercept = float(self.ds.get("RescaleIntercept", 0.0) or 0.0)
        return arr * slope + intercept


def is_dicom_file(path: str | os.PathLike[str]) -> bool:
    """A file with the DICOM preamble (``DICM`` at byte 128)."""
    try:
        return bool(pydicom.misc.is_dicom(path))
    except OSError:
        return False


def read_slice(source: DicomSource) -> tuple[str, DicomSlice | str]:
    """Parse one file: ``(name, slice)``, or ``(name, reason)`` for an object to skip.

    Raises
    ------
    IngestError
        ``DICOM_UNREADABLE``, ``DICOM_UNSUPPORTED``, ``FILE_NOT_FOUND``.
    """
    name, ds, digest = _load(source)
    return name, _as_slice(name, ds, digest)


def _load(source: DicomSource) -> tuple[str, Dataset, str]:
    """Parse one file (path or ``(name, bytes)``) -> ``(name, dataset, sha256 hex)``."""
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


def _as_slice(name: str, ds: Dataset, sha256: str) -> DicomSlice | str:
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
    return DicomSlice(name, ds, row, col, ipp, (ps[0], ps[1]), rows, columns, sha256)
