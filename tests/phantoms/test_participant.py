"""Phantom participants (mrcohort.phantoms.participant): determinism and stations."""

from __future__ import annotations

import hashlib
import itertools

import numpy as np
import pytest
from SimpleITK import GetArrayFromImage as voxels
from SimpleITK import GetArrayViewFromImage

from mrcohort.phantoms import PRESETS, make_participant, participant_id_for, station_slices


def _sha256(img) -> str:
    return hashlib.sha256(GetArrayViewFromImage(img).tobytes()).hexdigest()


def test_deterministic_for_a_seed(participant):
    again = make_participant(3, 1, "mini")
    assert np.array_equal(voxels(again.labels), voxels(participant.labels))
    assert np.array_equal(voxels(again.stations["f"][2]), voxels(participant.stations["f"][2]))
    assert again.truth == participant.truth
    other = make_participant(4, 1, "mini")
    assert not np.array_equal(voxels(other.labels), voxels(participant.labels))


def test_same_numbers_as_ever_for_a_seed(participant):
    """Pinned bytes (computed before phantoms became a package): a refactor that changes the
    random stream, the painting or the noise model fails here."""
    assert _sha256(participant.labels) == (
        "e9fdb92fef9fb067b7a2b043ec8dbc03e416c80eabbedfc8379d27d89868dbb0"
    )
    assert _sha256(participant.stations["in"][0]) == (
        "9c7790c3c158f0927f5dec96da4207de9bed475ababd15155fce5e9dc65c3f68"
    )
    assert _sha256(participant.stations["f"][2]) == (
        "56cfe3e8aca93fd01a3db0eb09ea3b330cea0956a3f64d77630c8c3bba3d5058"
    )


def test_stations_tile_the_reference_grid(participant):
    pre = PRESETS["mini"]
    nz = participant.labels.GetSize()[2]
    ranges = station_slices(nz, pre.n_stations, pre.overlap_slices)
    assert ranges[0][0] == 0 and ranges[-1][1] == nz
    for (_, a1), (b0, _) in itertools.pairwise(ranges):
        assert a1 - b0 >= pre.overlap_slices
    for (a, _), img in zip(ranges, participant.stations["in"], strict=True):
        z0 = participant.labels.GetOrigin()[2] + a * participant.labels.GetSpacing()[2]
        assert img.GetOrigin()[2] == pytest.approx(z0)
        assert img.GetSpacing() == participant.labels.GetSpacing()


def test_participant_ids_are_ukbb_like_eids(participant):
    assert participant.participant_id == participant_id_for(1) == "1000002"
    assert participant_id_for(0) == "1000001"
