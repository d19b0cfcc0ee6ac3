"""DICOM reading (pydicom): one file at a time (:mod:`.slices`), then series (:mod:`.series`).

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
