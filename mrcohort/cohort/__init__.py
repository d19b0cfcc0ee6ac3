"""Cohort input: find participant-visits in a layout, read their stations, stitch channels.

Callers outside this package use these names only; modules inside may move.
"""

from mrcohort.cohort.geometry import station_seams
from mrcohort.cohort.layouts import LAYOUTS, Layout, LayoutConfig, discover, get_layout, load_layout
from mrcohort.cohort.load import LoadedVisit, load_visit
from mrcohort.cohort.placement import apply_placement, estimate_placement, lacks_positions
from mrcohort.cohort.records import (
    Discovery,
    ParticipantVisit,
    Rejected,
    Station,
    relative_path,
)
from mrcohort.cohort.stitch import DEFAULT_MAX_VOXELS, place_stations, stitch, stitch_channels
from mrcohort.io.images import read_station_file

__all__ = [
    "DEFAULT_MAX_VOXELS",
    "LAYOUTS",
    "Discovery",
    "Layout",
    "LayoutConfig",
    "LoadedVisit",
    "ParticipantVisit",
    "Rejected",
    "Station",
    "apply_placement",
    "discover",
    "estimate_placement",
    "get_layout",
    "lacks_positions",
    "load_layout",
    "load_visit",
    "place_stations",
    "read_station_file",
    "relative_path",
    "station_seams",
    "stitch",
    "stitch_channels",
]
