"""DICOM reading: one file at a time (:mod:`.slices`), then series (:mod:`.series`).

Plain uncompressed files are read by a fast header scan (:mod:`.header`); every other file,
and every file the scan declines, by pydicom.

The writer used by the phantoms is :mod:`mrcohort.phantoms.writers.dicom`.
"""

from mrcohort.io.dicom.series import (
    DicomScan,
    DicomSeries,
    scan_dicom,
    series_sha256,
    slice_lattice,
)
from mrcohort.io.dicom.slices import DicomSlice, DicomSource, is_dicom_file, read_slice

__all__ = [
    "DicomScan",
    "DicomSeries",
    "DicomSlice",
    "DicomSource",
    "is_dicom_file",
    "read_slice",
    "scan_dicom",
    "series_sha256",
    "slice_lattice",
]
