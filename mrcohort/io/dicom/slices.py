"""One DICOM file: parse it, check it is whole, summarise its slice geometry.

A plain uncompressed greyscale file is read by the fast header scan of
:mod:`mrcohort.io.dicom.header` (its dataset is parsed by pydicom only when asked for);
every other file, and every file the scan does not fully understand, is parsed and checked by
pydicom here, so errors and skip reasons are pydicom's.

Geometry follows DICOM / ITK (LPS, mm):

* ``ImageOrientationPatient`` (IOP) holds the row direction (direction of increasing column
  index, SimpleITK axis x) and then the column direction (increasing row index, axis y).
* ``PixelSpacing`` is ``[spacing between rows (y), spacing between columns (x)]``.

Objects without pixel data (structured reports, encapsulated PDF, presentation states),
colour images and images without plane geometry are not errors: :func:`read_slice` returns
the reason they are skipped. Errors (:class:`~mrcohort.errors.IngestError`):
``DICOM_UNREADABLE`` (not DICOM, truncated, undecodable pixels, a malformed or non-finite
ImagePositionPatient), ``DICOM_UNSUPPORTED`` (multi-frame objects; BitsAllocated,
BitsStored or PixelRepresentation of no known pixel type), ``BAD_SPACING`` (PixelSpacing
zero, negative or not a number), ``BAD_DIRECTION`` (ImageOrientationPatient not two
orthonormal finite vectors), ``FILE_NOT_FOUND`` (a path vanished). All are found from the
header, before pixel data is decoded.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from io import BytesIO
from pathlib import Path

import numpy as np
import pydicom
import pydicom.misc
from pydicom.dataset import Dataset
from pydicom.uid import UID

from mrcohort.errors import IngestError
from mrcohort.io.dicom.header import SliceHeader, scan_header

__all__ = ["DicomSlice", "DicomSource", "is_dicom_file", "read_slice"]

#: One input file: a path, or ``(name, bytes)`` (e.g. a zip member read into memory).
DicomSource = str | os.PathLike[str] | tuple[str, bytes | bytearray]


@dataclass(frozen=True)
class DicomSlice:
    """Header summary of one image file; its dataset and pixels are decoded on demand.

    Attributes
    ----------
    name
        Path or zip member name.
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
    data
        The file's bytes.
    header
        What the fast scan (:mod:`mrcohort.io.dicom.header`) read; ``None`` for a file
        parsed by pydicom.
    parsed
        The dataset when the file was parsed by pydicom (see :attr:`ds`).
    """

    name: str
    row: np.ndarray
    col: np.ndarray
    ipp: np.ndarray
    pixel_spacing: tuple[float, float]
    rows: int
    columns: int
    sha256: str
    data: bytes | bytearray = field(repr=False)
    header: SliceHeader | None = field(default=None, repr=False)
    parsed: Dataset | None = field(default=None, repr=False)

    @cached_property
    def ds(self) -> Dataset:
        """The parsed dataset (pydicom); parsed on first use for a fast-scanned file."""
        return self.parsed if self.parsed is not None else pydicom.dcmread(BytesIO(self.data))

    @property
    def series_uid(self) -> str:
        """SeriesInstanceUID; ``""`` when absent or blank."""
        if self.header is not None:
            return self.header.series_uid
        return str(self.ds.get("SeriesInstanceUID", "") or "")

    @property
    def acquisition_time(self) -> str:
        """AcquisitionTime as text; ``""`` when absent or empty."""
        if self.header is not None:
            return self.header.acquisition_time
        value = self.ds.get("AcquisitionTime")
        return str(value) if value else ""

    def stored(self) -> np.ndarray:
        """Stored pixel values (before rescaling), shape (rows, columns)."""
        h = self.header
        if h is not None:  # native little-endian pixels: the file's bytes, viewed
            arr = np.frombuffer(self.data, h.dtype, h.rows * h.columns, h.pixel_offset)
            if h.unused_bits:  # as pydicom: shift out the unused high bits (sign-extends)
                arr = np.left_shift(arr, h.unused_bits)
                np.right_shift(arr, h.unused_bits, out=arr)
            return arr.reshape(h.rows, h.columns)
        try:
            arr = self.ds.pixel_array
        except Exception as exc:  # decoder errors come in many types
            raise IngestError(
                "DICOM_UNREADABLE", f"{self.name}: cannot decode pixel data: {exc}"
            ) from exc
        if arr.shape != (self.rows, self.columns):
            raise IngestError("DICOM_UNREADABLE", f"{self.name}: pixel array shape {arr.shape}")
        return arr

    def rescale(self) -> tuple[float, float]:
        """``(RescaleSlope, RescaleIntercept)``; a missing or zero slope is 1, intercept 0."""
        if self.header is not None:
            return self.header.rescale
        slope = float(self.ds.get("RescaleSlope", 1.0) or 1.0)
        intercept = float(self.ds.get("RescaleIntercept", 0.0) or 0.0)
        return slope, intercept

    def pixels(self) -> np.ndarray:
        """Decoded, rescaled pixels, shape (rows, columns), float64."""
        arr = self.stored()
        slope, intercept = self.rescale()
        return np.asarray(arr, dtype=np.float64) * slope + intercept

    def pixels_into(self, out: np.ndarray, work: np.ndarray) -> None:
        """Write :meth:`pixels` into ``out`` (any float dtype, shape (rows, columns)), computed
        in the float64 buffer ``work`` of that shape: no temporary arrays per slice."""
        arr = self.stored()
        slope, intercept = self.rescale()
        if slope == 1.0 and intercept == 0.0 and arr.dtype.kind in "iu":
            out[...] = arr  # integers x 1 + 0: the same rounding as through float64
            return
        np.multiply(arr, slope, out=work)
        np.add(work, intercept, out=work)
        out[...] = work


def is_dicom_file(path: str | os.PathLike[str]) -> bool:
    """A file with the DICOM preamble (``DICM`` at byte 128)."""
    try:
        return bool(pydicom.misc.is_dicom(path))
    except OSError:
        return False


def read_slice(
    source: DicomSource, *, max_bytes: int | None = None
) -> tuple[str, DicomSlice | str]:
    """Parse one file: ``(name, slice)``, or ``(name, reason)`` for an object to skip.

    ``max_bytes`` refuses a file on disk larger than that (``IMAGE_TOO_LARGE``) before it
    is read.

    Raises
    ------
    IngestError
        ``DICOM_UNREADABLE``, ``DICOM_UNSUPPORTED``, ``BAD_SPACING``, ``BAD_DIRECTION``,
        ``IMAGE_TOO_LARGE``, ``FILE_NOT_FOUND``.
    """
    name, data = _read(source, max_bytes)
    digest = hashlib.sha256(data).hexdigest()
    header = scan_header(data)
    if header is not None:
        fast = _fast_slice(name, data, digest, header)
        if fast is not None:
            return name, fast
    ds = _parse(name, data)
    return name, _as_slice(name, ds, digest, data)


def _read(source: DicomSource, max_bytes: int | None = None) -> tuple[str, bytes | bytearray]:
    """``(name, bytes)`` of one file (path or ``(name, bytes)``); a file larger than
    ``max_bytes`` is refused before it is read."""
    if isinstance(source, tuple):
        return source
    name = os.fspath(source)
    try:
        size = os.stat(name).st_size
        if max_bytes is not None and size > max_bytes:
            raise IngestError(
                "IMAGE_TOO_LARGE", f"{name}: {size} bytes, limit {max_bytes} per DICOM file"
            )
        return name, Path(name).read_bytes()
    except FileNotFoundError as exc:
        raise IngestError("FILE_NOT_FOUND", f"{name} does not exist") from exc


def _fast_slice(
    name: str, data: bytes | bytearray, digest: str, header: SliceHeader
) -> DicomSlice | None:
    """The slice of a fast-scanned file; ``None`` when its geometry is not plain (then the
    pydicom path reads it and raises its error)."""
    try:
        row, col, ipp, ps = _plane(name, header.iop, header.ipp, header.pixel_spacing)
    except IngestError:
        return None
    return DicomSlice(
        name, row, col, ipp, ps, header.rows, header.columns, digest, data, header=header
    )


def _parse(name: str, data: bytes | bytearray) -> Dataset:
    """The dataset of one file, parsed by pydicom and checked whole."""
    try:
        ds = pydicom.dcmread(BytesIO(data))
    except Exception as exc:  # pydicom raises many types on corrupt input
        raise IngestError("DICOM_UNREADABLE", f"{name}: {type(exc).__name__}: {exc}") from exc
    problem = _truncation(ds)
    if problem:
        raise IngestError("DICOM_UNREADABLE", f"{name}: truncated file ({problem})")
    return ds


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


def _as_slice(name: str, ds: Dataset, sha256: str, data: bytes | bytearray) -> DicomSlice | str:
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
    _check_pixel_type(name, ds)
    if not all(
        k in ds for k in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing")
    ):
        return "no image plane geometry (ImagePositionPatient/Orientation, PixelSpacing)"
    try:
        iop = [float(v) for v in ds.ImageOrientationPatient]
        ipp = [float(v) for v in ds.ImagePositionPatient]
        ps = [float(v) for v in ds.PixelSpacing]
    except (TypeError, ValueError) as exc:
        raise IngestError("DICOM_UNREADABLE", f"{name}: bad geometry: {exc}") from exc
    row, col, position, spacing = _plane(name, iop, ipp, ps)
    return DicomSlice(name, row, col, position, spacing, rows, columns, sha256, data, parsed=ds)


#: BitsAllocated values of native greyscale pixels pydicom decodes.
_BITS_ALLOCATED = frozenset({1, 8, 16, 32, 64})


def _check_pixel_type(name: str, ds: Dataset) -> None:
    """``DICOM_UNSUPPORTED`` unless BitsAllocated / BitsStored / PixelRepresentation name a
    known pixel type (checked before pixel data is decoded)."""
    try:
        allocated = int(ds.get("BitsAllocated", 16))
        stored = int(ds.get("BitsStored", allocated) or allocated)
        representation = int(ds.get("PixelRepresentation", 0) or 0)
    except (TypeError, ValueError) as exc:
        raise IngestError("DICOM_UNREADABLE", f"{name}: bad pixel header: {exc}") from exc
    if allocated not in _BITS_ALLOCATED or not 0 < stored <= allocated or representation > 1:
        raise IngestError(
            "DICOM_UNSUPPORTED",
            f"{name}: unknown pixel type (BitsAllocated {allocated}, BitsStored {stored}, "
            f"PixelRepresentation {representation})",
        )


def _plane(
    name: str, iop: Sequence[float], ipp: Sequence[float], ps: Sequence[float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[float, float]]:
    """``(row, col, ipp, pixel_spacing)`` checked: shapes, finite position, positive finite
    spacing (``BAD_SPACING``), orthonormal finite IOP (``BAD_DIRECTION``)."""
    position = np.asarray(ipp, dtype=float)
    if len(iop) != 6 or position.shape != (3,) or len(ps) != 2:
        raise IngestError("DICOM_UNREADABLE", f"{name}: malformed IPP/IOP/PixelSpacing")
    if not np.isfinite(position).all():
        raise IngestError("DICOM_UNREADABLE", f"{name}: ImagePositionPatient not finite")
    if not all(math.isfinite(v) and v > 0 for v in ps):
        raise IngestError(
            "BAD_SPACING", f"{name}: PixelSpacing {list(ps)} is not two positive spacings"
        )
    cosines = _cosines(tuple(float(v) for v in iop))
    if cosines is None:
        raise IngestError(
            "BAD_DIRECTION",
            f"{name}: ImageOrientationPatient {list(iop)} is not two orthonormal directions",
        )
    return cosines[0], cosines[1], position, (float(ps[0]), float(ps[1]))


@functools.lru_cache(maxsize=64)
def _cosines(iop: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray] | None:
    """Orthonormalised (row, col) of an IOP, or None when it is not orthonormal; computed
    once per orientation (the slices of a series share it). The arrays are read-only."""
    orientation = np.asarray(iop, dtype=float)
    row, col = orientation[:3], orientation[3:]
    if not np.isfinite(orientation).all():
        return None
    if min(np.linalg.norm(row), np.linalg.norm(col)) < 0.5 or abs(_unit(row) @ _unit(col)) > 1e-3:
        return None
    row = _unit(row)
    col = _unit(col - (col @ row) * row)
    row.flags.writeable = col.flags.writeable = False
    return row, col
