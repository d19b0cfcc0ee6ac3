"""Writers of phantom cohorts: DICOM series, UK Biobank zips, NAKO and NIfTI layouts, and the
whole cohort with its truth tables (test data only; production code reads, never writes, these).
"""

from mrcohort.phantoms.writers.cohort import write_cohort, write_participant
from mrcohort.phantoms.writers.dicom import write_series
from mrcohort.phantoms.writers.nako import write_nako_participant
from mrcohort.phantoms.writers.nifti import write_nifti_participant
from mrcohort.phantoms.writers.ukbb import write_ukbb_zip

__all__ = [
    "write_cohort",
    "write_nako_participant",
    "write_nifti_participant",
    "write_participant",
    "write_series",
    "write_ukbb_zip",
]
