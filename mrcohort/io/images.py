"""Image files (SimpleITK): every read and write, header-only grid reads and checked station reads.

Plain reads and writes (:func:`read_image`, :func:`write_image`), the header of a file without
its voxels (:func:`read_header`, :func:`read_grid`), and the checked read of one station
(:func:`read_station_file`): the header is read first, so an image that is not 3D or is
absurdly large is refused before a single voxel is allocated. Every image
:func:`read_station_file` or :func:`check_image` returns is 3D, scalar, float32 and finite.

Error codes (:class:`~mrcohort.errors.IngestError`):

``FILE_NOT_FOUND``
    The file vanished.
``IMAGE_UNREADABLE``
    Not an image file SimpleITK can read (or a corrupt one).
``BAD_DIMENSION``
    Not a 3D scalar image (2D, 4D with more than one volume, vector pixels). Trailing
    singleton dimensions (a 4D NIfTI holding one volume) are dropped.
``IMAGE_TOO_LARGE``
    More voxels than ``limits.max_voxels`` or an axis longer than ``limits.max_axis``.
``BAD_SPACING``
    A voxel spacing that is zero, negative, infinite or not a number. ITK's NIfTI reader
    silently reads a zero or non-finite ``pixdim`` as 1 mm, so NIfTI files are checked on
    their stored ``pixdim`` (nibabel, header only).
``BAD_DIRECTION``
    A direction matrix that is not finite and orthonormal (a sheared or degenerate
    orientation); a non-finite origin is ``IMAGE_UNREADABLE``.
``NONFINITE_VOXELS``
    NaN or infinite voxel values. ITK's NIfTI reader (ITK < 6, so SimpleITK 2.x) silently
    replaces them by 0 (ITK issue #6575 item B52, fixed by ITK PR #6683), so float NIfTI
    files are checked on their stored values with nibabel.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from mrcohort.errors import IngestError, StitchError
from mrcohort.io.files import atomic_target, fsync_dir
from mrcohort.io.written import check_image_written

__all__ = [
    "GRID_TOLERANCE",
    "IMAGE_SUFFIXES",
    "Limits",
    "check_geometry",
    "check_image",
    "check_size",
    "image_format",
    "image_stem",
    "read_grid",
    "read_header",
    "read_image",
    "read_station_file",
    "same_grid",
    "spacing_zyx",
    "write_image",
]

#: File endings read as image files (lower case), mapped to the ``format`` column value.
IMAGE_SUFFIXES: dict[str, str] = {
    ".nii.gz": "nifti",
    ".nii": "nifti",
    ".mha": "mha",
    ".mhd": "mha",
    ".nrrd": "nrrd",
    ".nhdr": "nrrd",
}
_FLOAT_PIXELS = (sitk.sitkFloat32, sitk.sitkFloat64)


@dataclass(frozen=True)
class Limits:
    """Largest image accepted (checked from the header, before allocating voxels)."""

    max_voxels: int = 2**28
    max_axis: int = 4096


# --------------------------------------------------------------------------- plain I/O


def read_image(path: str | os.PathLike[str]) -> sitk.Image:
    """Read one image file (NIfTI, MHA, NRRD, ...)."""
    return sitk.ReadImage(str(path))


def write_image(img: sitk.Image, path: str | os.PathLike[str], *, compress: bool = True) -> Path:
    """Write an image atomically (temp file in the same folder, checked, flushed to disk, then
    ``os.replace``). ``OSError`` (``ENOSPC`` on a full disk, naming the file) when the file
    is incomplete: ITK's NIfTI writer does not report a failed write."""
    dest = Path(path)
    suffix = "".join(dest.suffixes) or ".nii.gz"
    with atomic_target(dest, suffix=suffix) as tmp:
        sitk.WriteImage(img, str(tmp), useCompression=compress)
        check_image_written(tmp, img, dest)
    fsync_dir(dest.parent)  # the rename too survives a crash
    return dest


#: Relative tolerance of :func:`same_grid` (spacing; origin in units of the largest spacing;
#: direction cosines absolute): well above float32 header rounding, far below a voxel.
GRID_TOLERANCE = 1e-4


def same_grid(a: sitk.Image, b: sitk.Image, *, tolerance: float = GRID_TOLERANCE) -> bool:
    """The two images share one voxel grid: same size, and spacing, origin and direction equal
    within ``tolerance`` (a NIfTI file stores them in float32)."""
    return (
        a.GetSize() == b.GetSize()
        and np.allclose(a.GetSpacing(), b.GetSpacing(), rtol=tolerance, atol=0)
        and np.allclose(a.GetOrigin(), b.GetOrigin(), rtol=0, atol=tolerance * max(a.GetSpacing()))
        and np.allclose(a.GetDirection(), b.GetDirection(), rtol=0, atol=tolerance)
    )


def spacing_zyx(img: sitk.Image) -> tuple[float, float, float]:
    """Voxel spacing in mm in numpy array order (z, y, x)."""
    sx, sy, sz = img.GetSpacing()
    return (float(sz), float(sy), float(sx))


def image_format(path: str | os.PathLike[str]) -> str | None:
    """``nifti`` / ``mha`` / ``nrrd`` from the file name, ``None`` for anything else."""
    name = Path(path).name.lower()
    for suffix, fmt in IMAGE_SUFFIXES.items():
        if name.endswith(suffix) and len(name) > len(suffix):
            return fmt
    return None


def image_stem(path: str | os.PathLike[str]) -> str:
    """File name without its image ending (``a.nii.gz`` -> ``a``)."""
    name = Path(path).name
    for suffix in IMAGE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


# --------------------------------------------------------------------------- headers


def read_header(path: str | os.PathLike[str], *, label: str | None = None) -> sitk.ImageFileReader:
    """A reader of ``path`` whose header (size, spacing, origin, ...) is read; no voxels.

    Raises
    ------
    IngestError
        ``FILE_NOT_FOUND``, ``IMAGE_UNREADABLE``, ``BAD_DIRECTION`` (a NIfTI file whose
        sform and qform are both not orthonormal).
    """
    p = Path(path)
    label = label or str(p)
    if not p.is_file():
        raise IngestError("FILE_NOT_FOUND", f"{label} does not exist")
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(p))
    try:
        reader.ReadImageInformation()
    except RuntimeError as exc:
        # ITK's NIfTI reader refuses a sheared / degenerate sform and qform with this message
        code = "BAD_DIRECTION" if "orthonormal direction" in str(exc) else "IMAGE_UNREADABLE"
        raise IngestError(code, f"{label}: {_first_line(exc)}") from exc
    return reader


def read_grid(path: str | os.PathLike[str], *, max_voxels: int | None = None) -> sitk.Image:
    """An empty image (uint8, zeros) with the grid of the 3D image file at ``path``.

    Only the header is read. ``max_voxels`` refuses a larger grid before it is allocated.

    Raises
    ------
    IngestError
        ``FILE_NOT_FOUND``, ``IMAGE_UNREADABLE``, ``BAD_DIMENSION`` (not 3D).
    StitchError
        ``GRID_TOO_LARGE``.
    """
    reader = read_header(path)
    if reader.GetDimension() != 3:
        raise IngestError("BAD_DIMENSION", f"{path}: {reader.GetDimension()}D; need a 3D image")
    size = [int(v) for v in reader.GetSize()]
    n_voxels = math.prod(size)
    if max_voxels is not None and n_voxels > max_voxels:
        raise StitchError("GRID_TOO_LARGE", f"{path}: {n_voxels} voxels, limit {max_voxels}")
    grid = sitk.Image(size, sitk.sitkUInt8)
    grid.SetOrigin(reader.GetOrigin())
    grid.SetSpacing(reader.GetSpacing())
    grid.SetDirection(reader.GetDirection())
    return grid


# --------------------------------------------------------------------------- checked reads


def check_size(size: tuple[int, ...], limits: Limits, label: str) -> None:
    """Raise ``IMAGE_TOO_LARGE`` unless ``size`` is within ``limits``."""
    n = math.prod(int(v) for v in size)
    if n > limits.max_voxels or max(size, default=0) > limits.max_axis:
        raise IngestError(
            "IMAGE_TOO_LARGE",
            f"{label}: size {' x '.join(map(str, size))} exceeds the limits "
            f"({limits.max_voxels} voxels, {limits.max_axis} per axis)",
        )


#: Largest deviation of the direction matrix's D^T D from identity accepted as orthonormal.
DIRECTION_TOLERANCE = 1e-3


def check_geometry(
    spacing: tuple[float, ...],
    direction: tuple[float, ...],
    origin: tuple[float, ...],
    label: str,
) -> None:
    """Raise unless the first three axes of a header's geometry are usable.

    Raises
    ------
    IngestError
        ``BAD_SPACING`` (spacing zero, negative or not finite), ``BAD_DIRECTION`` (direction
        not finite and orthonormal within :data:`DIRECTION_TOLERANCE`), ``IMAGE_UNREADABLE``
        (origin not finite).
    """
    dim = round(math.sqrt(len(direction)))
    spacing3 = [float(v) for v in spacing[:3]]
    if not all(math.isfinite(v) and v > 0 for v in spacing3):
        raise IngestError(
            "BAD_SPACING", f"{label}: voxel spacing {spacing3} mm is not positive and finite"
        )
    matrix = np.asarray(direction, dtype=float).reshape(dim, dim)[:3, :3]
    if not np.isfinite(matrix).all() or (
        np.abs(matrix.T @ matrix - np.eye(3)).max() > DIRECTION_TOLERANCE
    ):
        shown = np.round(matrix, 4).tolist()
        raise IngestError("BAD_DIRECTION", f"{label}: direction {shown} is not orthonormal")
    if not all(math.isfinite(float(v)) for v in origin[:3]):
        raise IngestError("IMAGE_UNREADABLE", f"{label}: origin {list(origin[:3])} not finite")


def check_image(img: sitk.Image, label: str, *, limits: Limits | None = None) -> sitk.Image:
    """Return ``img`` as float32 after checking it is 3D, scalar, within limits and finite.

    Raises
    ------
    IngestError
        ``BAD_DIMENSION``, ``IMAGE_TOO_LARGE``, ``NONFINITE_VOXELS``.
    """
    if img.GetDimension() != 3 or img.GetNumberOfComponentsPerPixel() != 1:
        raise IngestError(
            "BAD_DIMENSION",
            f"{label}: {img.GetDimension()}D image with "
            f"{img.GetNumberOfComponentsPerPixel()} component(s); need 3D scalar",
        )
    check_size(img.GetSize(), limits or Limits(), label)
    if img.GetPixelID() != sitk.sitkFloat32:
        img = sitk.Cast(img, sitk.sitkFloat32)
    arr = sitk.GetArrayViewFromImage(img)
    # a finite sum means finite voxels (one fast pass); a sum that overflowed is checked again
    with np.errstate(over="ignore", invalid="ignore"):
        finite_sum = bool(np.isfinite(arr.sum()))
    if not finite_sum and not np.isfinite(arr).all():
        n_bad = int(np.count_nonzero(~np.isfinite(arr)))
        raise IngestError("NONFINITE_VOXELS", f"{label}: {n_bad} NaN or infinite voxels")
    return img


def read_station_file(
    path: str | os.PathLike[str], *, limits: Limits | None = None, label: str | None = None
) -> sitk.Image:
    """Read one station image file as a checked float32 3D image.

    Parameters
    ----------
    path
        NIfTI, MHA, NRRD or any other format SimpleITK reads.
    limits
        Size limits (default :class:`Limits`).
    label
        Name used in error messages (default: the path).
    """
    p = Path(path)
    label = label or str(p)
    limits = limits or Limits()
    reader = read_header(p, label=label)
    size = tuple(int(v) for v in reader.GetSize())
    dim = len(size)
    while dim > 3 and size[dim - 1] == 1:
        dim -= 1
    if dim != 3 or reader.GetNumberOfComponents() != 1:
        raise IngestError(
            "BAD_DIMENSION",
            f"{label}: size {' x '.join(map(str, size))} with "
            f"{reader.GetNumberOfComponents()} component(s); need a 3D scalar image",
        )
    check_size(size[:3], limits, label)
    check_geometry(reader.GetSpacing(), reader.GetDirection(), reader.GetOrigin(), label)
    if image_format(p) == "nifti":
        _check_nifti_spacing(p, label)
    try:
        if len(size) > 3:
            reader.SetExtractIndex([0] * len(size))
            reader.SetExtractSize([*size[:3], *([0] * (len(size) - 3))])
        img = reader.Execute()
    except RuntimeError as exc:
        raise IngestError("IMAGE_UNREADABLE", f"{label}: {_first_line(exc)}") from exc
    if image_format(p) == "nifti" and img.GetPixelID() in _FLOAT_PIXELS:
        _check_nifti_finite(p, label)
    return check_image(img, label, limits=limits)


def _check_nifti_spacing(path: Path, label: str) -> None:
    """BAD_SPACING if the stored ``pixdim`` of the first three axes is not positive and finite
    (ITK reads a zero or NaN ``pixdim`` as 1 mm). Only the header is read."""
    import nibabel as nib  # installed with nnunetv2
    from nibabel.openers import ImageOpener

    try:  # nib.load "fixes" a zero pixdim to 1 as ITK does: read the header unchecked
        header_class = nib.load(str(path)).header_class
        with ImageOpener(str(path)) as fobj:
            header = header_class.from_fileobj(fobj, check=False)
        pixdim = [float(v) for v in header["pixdim"][1:4]]
    except Exception as exc:  # nibabel raises several types on odd files
        raise IngestError("IMAGE_UNREADABLE", f"{label}: {type(exc).__name__}: {exc}") from exc
    if not all(math.isfinite(v) and v > 0 for v in pixdim):
        raise IngestError("BAD_SPACING", f"{label}: pixdim {pixdim} mm is not positive and finite")


def _check_nifti_finite(path: Path, label: str) -> None:
    """NONFINITE_VOXELS if the stored (scaled) values of a NIfTI file hold NaN or Inf."""
    import nibabel as nib  # installed with nnunetv2

    try:
        data = np.asanyarray(nib.load(str(path)).dataobj)
    except Exception as exc:  # nibabel raises several types on odd files
        raise IngestError("IMAGE_UNREADABLE", f"{label}: {type(exc).__name__}: {exc}") from exc
    if data.dtype.kind in "fc" and not np.isfinite(data).all():
        n_bad = int(np.count_nonzero(~np.isfinite(data)))
        raise IngestError("NONFINITE_VOXELS", f"{label}: {n_bad} NaN or infinite voxels")


def _first_line(exc: BaseException) -> str:
    """A one-line summary of an ITK exception (they span many lines)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    useful = [ln for ln in lines if "Description:" in ln or "ERROR" in ln.upper()]
    return (useful or lines or [type(exc).__name__])[-1][:300]
