"""Tests for mrcohort.cohort.channels: canonical order and the one-grid check."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from mrcohort.cohort.channels import CHANNELS, canonical_order, check_channels
from mrcohort.cohort.stitch import stitch_channels
from mrcohort.errors import StitchError
from tests.builders import array, cut, smooth_volume


def channels(full_offsets: dict[str, float]) -> dict[str, list[sitk.Image]]:
    """Channel -> stations cut from a shifted copy of the smooth volume."""
    return {c: cut(smooth_volume(off)) for c, off in full_offsets.items()}


def test_canonical_order() -> None:
    assert canonical_order(["f", "t2", "in", "w", "opp", "ct"]) == [*CHANNELS, "ct", "t2"]
    assert canonical_order({"w": 1, "in": 2}) == ["in", "w"]


def test_grid_mismatch() -> None:
    stations = channels({"in": 0.0, "opp": 0.0, "w": 0.0, "f": 0.0})
    moved = sitk.Image(stations["w"][1])
    x, y, z = moved.GetOrigin()
    moved.SetOrigin((x + 1.0, y, z))
    stations["w"][1] = moved
    with pytest.raises(StitchError) as info:
        stitch_channels(stations)
    assert info.value.code == "GRID_MISMATCH"
    assert info.value.stage == "stitch"


def test_grid_check_accepts_reoriented_channel() -> None:
    stations = channels({"in": 0.0, "w": 0.0})
    stations["w"] = [sitk.DICOMOrient(s, "RAS") for s in stations["w"]]
    out = stitch_channels(stations)
    np.testing.assert_allclose(array(out["w"]), array(out["in"]), atol=1e-4)


def test_check_channels_orders_stations() -> None:
    stations = channels({"in": 0.0, "w": 0.0})
    stations["w"] = stations["w"][::-1]
    ordered = check_channels(stations)
    z = [s.GetOrigin()[2] for s in ordered["w"]]
    assert z == sorted(z)


def test_check_channels_codes() -> None:
    full = channels({"in": 0.0, "w": 0.0})
    cases = {
        "STATION_MISMATCH": {"in": full["in"], "w": full["w"][:2]},
        "NO_STATIONS": {"in": []},
        "STATION_GAP": {c: [v[0], v[2]] for c, v in full.items()},
    }
    for code, stations in cases.items():
        with pytest.raises(StitchError) as info:
            check_channels(stations)
        assert info.value.code == code
    allowed = check_channels(cases["STATION_GAP"], allow_gaps=True)
    assert [len(v) for v in allowed.values()] == [2, 2]
