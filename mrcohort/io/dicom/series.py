"""DICOM series: group slice files into series and stack each into one volume (LPS, mm).

Slices are ordered by the projection of ``ImagePositionPatient`` (IPP) on the slice normal
``cross(row, col)`` — never by file name or ``InstanceNumber`` — and must form a regular
lattice. Per-file parsing is :mod:`mrcohort.io.dicom.slices`.

Error codes (:class:`~mrcohort.errors.IngestError`) raised here, besides those of the slices:

``INCONSISTENT_SERIES``
    Slices of one series disagree on matrix size, pixel spacing or orientation.
``DUPLICATE_SLICES``
    Two slices of one series at the same position.
``NONUNIFORM_SLICES``
    Slice positions are not a regular lattice along the normal (missing slice, variable
    gap, gantry tilt / shear).
``IMAGE_TOO_LARGE``
    A series would exceed ``max_voxels`` or ``max_axis`` (checked from the headers, before
    a pixel is decoded or the volume allocated).
``BAD_SPACING``
    A single-slice series with neither a positive SpacingBetweenSlices nor a positive
    SliceThickness (its only slice spacing); never taken as 1 mm.

Skipped objects (no pixel data, colour, no plane geometry) are listed in
:attr:`DicomScan.ignored`.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk

from mrcohort.errors import IngestError
from mrcohort.io.dicom.slices import DicomSlice, DicomSource, read_slice

__all__ = [
    "DicomScan",
    "DicomSeries",
    "scan_dicom",
    "series_sha256",
    "slice_lattice",
]

#: Two slices closer than this along the normal are the same slice (mm).
_DUPLICATE_TOL_MM = 1e-2
#: Allowed deviation of one slice gap from the mean gap: absolute (mm) plus relative.
_GAP_TOL_MM = 1e-2
_GAP_TOL_REL = 1e-2
#: Allowed disagreement of orientation cosines / pixel spacing between slices of a series.
_IOP_TOL = 1e-4
_SPACING_TOL_MM = 1e-4


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


def series_sha256(file_sha256: Iterable[str]) -> str:
    """Content hash of a series: sha256 of each slice file's sha256 hex + newline, in order."""
    h = hashlib.sha256()
    for digest in file_sha256:
        h.update(f"{digest}\n".encode("ascii"))
    return h.hexdigest()


def _check_consistent(uid: str, slices: list[DicomSlice]) -> None:
    """All slices of a series share matrix size, pixel spacing and orientation.

    The first slice (in the given order) that differs from the first one raises, for the
    first property it differs in.
    """
    sizes = np.array([(s.rows, s.columns) for s in slices])
    spacing = np.array([s.pixel_spacing for s in slices])
    cosines = np.array([np.concatenate([s.row, s.col]) for s in slices])
    bad = np.stack(
        [
            np.any(sizes != sizes[0], axis=1),
            np.max(np.abs(spacing - spacing[0]), axis=1) > _SPACING_TOL_MM,
            np.max(np.abs(cosines - cosines[0]), axis=1) > _IOP_TOL,
        ],
        axis=1,
    )
    if not bad.any():
        return
    which = int(np.argmax(bad[int(np.argmax(bad.any(axis=1)))]))
    what = ("matrix size", "PixelSpacing", "ImageOrientationPatient")[which]
    raise IngestError("INCONSISTENT_SERIES", f"series {uid}: slices differ in {what}")


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


def _first_text(slices: list[DicomSlice], keyword: str) -> str:
    """First non-empty value of a text attribute among the slices."""
    for s in slices:
        value = s.ds.get(keyword)
        if value not in (None, ""):
            return str(value)
    return ""


def _build_series(
    uid: str, slices: list[DicomSlice], *, max_voxels: int | None, max_axis: int | None = None
) -> DicomSeries:
    """Sort, check and stack the slices of one series into a float32 volume."""
    _check_consistent(uid, slices)
    first = slices[0]
    n_voxels = first.rows * first.columns * len(slices)
    longest = max(first.rows, first.columns, len(slices))
    too_long = max_axis is not None and longest > max_axis
    if too_long or (max_voxels is not None and n_voxels > max_voxels):
        raise IngestError(
            "IMAGE_TOO_LARGE",
            f"series {uid}: {first.columns} x {first.rows} x {len(slices)} = {n_voxels} voxels "
            f"exceeds the limits ({max_voxels} voxels, {max_axis} per axis)",
        )
    positions = np.stack([s.ipp for s in slices])
    order, gap = slice_lattice(positions, first.row, first.col, label=f"series {uid}")
    ordered = [slices[i] for i in order]
    if np.isnan(gap):
        gap = _single_slice_spacing(uid, first)
    img = sitk.GetImageFromArray(_stack(ordered))
    img.SetOrigin(tuple(float(v) for v in ordered[0].ipp))
    img.SetSpacing((first.pixel_spacing[1], first.pixel_spacing[0], gap))
    normal = np.cross(first.row, first.col)
    img.SetDirection(tuple(float(v) for v in np.stack([first.row, first.col, normal], 1).ravel()))

    times = sorted(t for s in slices if (t := s.acquisition_time))
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


def _single_slice_spacing(uid: str, only: DicomSlice) -> float:
    """The slice spacing of a one-slice series: the first of SpacingBetweenSlices and
    SliceThickness that is a positive finite number.

    Raises ``BAD_SPACING`` when neither is (zero, negative, not a number or absent): never
    taken as 1 mm.
    """
    seen = []
    for keyword in ("SpacingBetweenSlices", "SliceThickness"):
        raw = only.ds.get(keyword)
        try:
            value = float(raw) if raw not in (None, "") else math.nan
        except (TypeError, ValueError):
            value = math.nan
        if math.isfinite(value) and value > 0:
            return value
        seen.append(f"{keyword} {'absent' if raw in (None, '') else raw}")
    raise IngestError(
        "BAD_SPACING", f"series {uid}: one slice and no positive spacing ({', '.join(seen)})"
    )


def _stack(ordered: list[DicomSlice]) -> np.ndarray:
    """The rescaled pixels of the slices as one float32 volume (z, y, x)."""
    first = ordered[0]
    volume = np.empty((len(ordered), first.rows, first.columns), dtype=np.float32)
    work = np.empty((first.rows, first.columns), dtype=np.float64)
    for k, s in enumerate(ordered):
        s.pixels_into(volume[k], work)
    return volume


def _series_key(s: DicomSlice) -> str:
    """Grouping key: SeriesInstanceUID, or (when anonymisation blanked it) a key made of
    technical fields that one series shares."""
    uid = s.series_uid
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
    max_axis: int | None = None,
    max_file_bytes: int | None = None,
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
    max_voxels, max_axis
        Refuse (``IMAGE_TOO_LARGE``) a series with more voxels, or more along one axis,
        before a pixel of it is decoded.
    max_file_bytes
        Refuse (``IMAGE_TOO_LARGE``) a file on disk larger than this before reading it.

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
        ``DICOM_UNREADABLE``, ``DICOM_UNSUPPORTED``, ``BAD_SPACING``, ``BAD_DIRECTION``,
        ``INCONSISTENT_SERIES``, ``DUPLICATE_SLICES``, ``NONUNIFORM_SLICES``,
        ``IMAGE_TOO_LARGE`` (see module docstrings); ``FILE_NOT_FOUND`` when a path
        vanished.
    """
    by_series: dict[str, list[DicomSlice]] = {}
    ignored: list[tuple[str, str]] = []
    n_image_files = 0
    for source in files:
        name, summary = read_slice(source, max_bytes=max_file_bytes)
        if isinstance(summary, str):
            ignored.append((name, summary))
            continue
        n_image_files += 1
        by_series.setdefault(_series_key(summary), []).append(summary)

    series: list[DicomSeries] = []
    for key, slices in by_series.items():
        uid = slices[0].series_uid
        description = str(slices[0].ds.get("SeriesDescription", "") or "")
        if description_filter is not None and not description_filter(description):
            ignored.append((f"series {uid or key}", f"description {description!r} not selected"))
            continue
        series.append(_build_series(uid, slices, max_voxels=max_voxels, max_axis=max_axis))
    series.sort(
        key=lambda s: (s.series_number if s.series_number is not None else -1, s.series_uid)
    )
    return DicomScan(series=series, ignored=ignored, n_image_files=n_image_files)
