"""File input and output: atomic writes and hashes, image files, DICOM, zip members.

Every image read or write of mrcohort goes through :mod:`mrcohort.io.images`; DICOM files
are read by :mod:`mrcohort.io.dicom`; :mod:`mrcohort.io.files` writes atomically;
:mod:`mrcohort.io.zips` reads zip members fast; :mod:`mrcohort.io.tree` walks input folders,
reporting what cannot be read safely.
"""

from mrcohort.io.dicom import DicomScan, DicomSeries, DicomSource, is_dicom_file, scan_dicom
from mrcohort.io.files import atomic_target, sha256_file
from mrcohort.io.images import (
    Limits,
    check_image,
    image_format,
    image_stem,
    read_grid,
    read_header,
    read_image,
    read_station_file,
    spacing_zyx,
    write_image,
)

__all__ = [
    "DicomScan",
    "DicomSeries",
    "DicomSource",
    "Limits",
    "atomic_target",
    "check_image",
    "image_format",
    "image_stem",
    "is_dicom_file",
    "read_grid",
    "read_header",
    "read_image",
    "read_station_file",
    "scan_dicom",
    "sha256_file",
    "spacing_zyx",
    "write_image",
]
