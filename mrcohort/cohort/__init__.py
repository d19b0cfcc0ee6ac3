"""Cohort input: find participant-visits in a layout, read their stations, stitch channels.

Callers outside this package use these names only; modules inside may move.
"""

from mrcohort.cohort.imagefile import read_station_file
from mrcohort.cohort.ingest import LoadedVisit, discover, load_visit
from mrcohort.cohort.layouts import LayoutConfig, load_layout
from mrcohort.cohort.placement import apply_placement, estimate_placement, lacks_positions
from mrcohort.cohort.records import (
    Discovery,
    ParticipantVisit,
    Rejected,
    Station,
    relative_path,
)
from mrcohort.cohort.stitch import DEFAULT_MAX_VOXELS, stitch_channels

__all__ = [
    "DEFAULT_MAX_VOXELS",
    "Discovery",
    "LayoutConfig",
    "LoadedVisit",
    "ParticipantVisit",
    "Rejected",
    "Station",
    "apply_placement",
    "discover",
    "estimate_placement",
    "lacks_positions",
    "load_layout",
    "load_visit",
    "read_station_file",
    "relative_path",
    "stitch_channels",
]
