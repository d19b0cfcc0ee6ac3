"""All image file reads and writes go through here (SimpleITK)."""

from __future__ import annotations

import os
from pathlib import Path

import SimpleITK as sitk

from mrcohort.io.files import atomic_target


def read_image(path: str | os.PathLike[str]) -> sitk.Image:
    """Read one image file (NIfTI, MHA, NRRD, ...)."""
    return sitk.ReadImage(str(path))


def write_image(img: sitk.Image, path: str | os.PathLike[str], *, compress: bool = True) -> Path:
    """Write an image atomically: temp file in the same folder, then ``os.replace``."""
    dest = Path(path)
    suffix = "".join(dest.suffixes) or ".nii.gz"
    with atomic_target(dest, suffix=suffix) as tmp:
        sitk.WriteImage(img, str(tmp), useCompression=compress)
    return dest


def spacing_zyx(img: sitk.Image) -> tuple[float, float, float]:
    """Voxel spacing in mm in numpy array order (z, y, x)."""
    sx, sy, sz = img.GetSpacing()
    return (float(sz), float(sy), float(sx))
