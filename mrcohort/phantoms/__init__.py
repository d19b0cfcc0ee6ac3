"""Phantom cohorts with analytic ground truth (UK Biobank, NAKO and NIfTI layouts) and the
small analytic fixtures the tests and benchmarks measure against.

Test-data generators only: production code (cohort, segmentation, biomarkers, schemas,
jobs) never imports this package. Other callers use the names exported here.
"""

from mrcohort.phantoms.phantom import (
    NAKO_DESCRIPTIONS,
    PRESETS,
    SIGNAL_SCALE,
    PhantomParticipant,
    Preset,
    Tube,
    curved_centerline,
    make_participant,
    noisy_channels,
    polyline_length,
    render_participant,
    station_slices,
    write_cohort,
    write_nako_participant,
)

__all__ = [
    "NAKO_DESCRIPTIONS",
    "PRESETS",
    "SIGNAL_SCALE",
    "PhantomParticipant",
    "Preset",
    "Tube",
    "curved_centerline",
    "make_participant",
    "noisy_channels",
    "polyline_length",
    "render_participant",
    "station_slices",
    "write_cohort",
    "write_nako_participant",
]
