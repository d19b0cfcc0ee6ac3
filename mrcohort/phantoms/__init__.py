"""Phantom cohorts with analytic ground truth (UK Biobank, NAKO and NIfTI layouts) and the
small analytic fixtures (:mod:`mrcohort.phantoms.fixtures`) the tests and benchmarks measure
against.

Modules: ``shapes`` (solids, centrelines), ``anatomy`` (a participant's body, organs and
tissues), ``presets`` (acquisition grids), ``render`` (painting onto a grid), ``signal`` (the
Dixon signal and Rician noise model), ``participant`` (one participant's stations), ``truth``
(truth rows), ``phenotypes`` (synthetic age, sex, BMI related to the anatomy), ``writers``
(DICOM, UK Biobank zip, NAKO, NIfTI, whole cohorts).

Test-data generators only: production code (cohort, segmentation, biomarkers, schemas,
jobs) never imports this package. Other callers use the names exported here.
"""

from mrcohort.phantoms.participant import (
    PhantomParticipant,
    make_participant,
    participant_id_for,
    render_participant,
    station_slices,
)
from mrcohort.phantoms.phenotypes import PHENOTYPE_COLUMNS, phenotype, phenotype_rows
from mrcohort.phantoms.presets import PRESETS, Preset
from mrcohort.phantoms.shapes import Tube, curved_centerline, polyline_length
from mrcohort.phantoms.signal import SIGNAL_SCALE, noisy_channels, rician_magnitude
from mrcohort.phantoms.writers.cohort import write_cohort, write_participant
from mrcohort.phantoms.writers.nako import NAKO_DESCRIPTIONS, write_nako_participant

__all__ = [
    "NAKO_DESCRIPTIONS",
    "PHENOTYPE_COLUMNS",
    "PRESETS",
    "SIGNAL_SCALE",
    "PhantomParticipant",
    "Preset",
    "Tube",
    "curved_centerline",
    "make_participant",
    "noisy_channels",
    "participant_id_for",
    "phenotype",
    "phenotype_rows",
    "polyline_length",
    "render_participant",
    "rician_magnitude",
    "station_slices",
    "write_cohort",
    "write_nako_participant",
    "write_participant",
]
