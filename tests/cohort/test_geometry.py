"""Tests for mrcohort.cohort.geometry: stacking axis, station order, extents and gaps."""

from __future__ import annotations

import random

import numpy as np
import pytest
import SimpleITK as sitk

from mrcohort.cohort.geometry import (
    centre,
    check_gaps,
    corners,
    extent_along,
    stacking_axis,
    station_gaps,
    station_order,
    station_seams,
)
from mrcohort.errors import StitchError
from tests.builders import cut, smooth_volume


def test_corners_and_centre() -> None:
    img = smooth_volume()[:, :, 0:24]
    box = corners(img)
    assert box.shape == (8, 3)
    np.testing.assert_allclose(box.min(axis=0), (-30.0, -20.0, -90.0))
    np.testing.assert_allclose(box.max(axis=0), (-30.0 + 39 * 1.5, -20.0 + 29 * 1.5, -21.0))
    np.testing.assert_allclose(
        centre(img), img.TransformContinuousIndexToPhysicalPoint((19.5, 14.5, 11.5))
    )
    np.testing.assert_allclose(extent_along(img, np.array([0.0, 0.0, 1.0])), (-90.0, -21.0))


def test_stacking_axis_points_superior() -> None:
    stations = cut(smooth_volume())
    np.testing.assert_allclose(stacking_axis(stations), [0, 0, 1], atol=1e-9)
    np.testing.assert_allclose(stacking_axis(stations[::-1]), [0, 0, 1], atol=1e-9)
    np.testing.assert_allclose(stacking_axis(stations[:1]), [0, 0, 1], atol=1e-9)


@pytest.mark.parametrize("orientation", ["LPS", "RAS", "PIL"])
def test_station_order_along_the_stack(orientation: str) -> None:
    stations = [sitk.DICOMOrient(s, orientation) for s in cut(smooth_volume())]
    shuffled = [2, 0, 1]
    order = station_order([stations[i] for i in shuffled])
    assert [shuffled[i] for i in order] == [0, 1, 2]  # inferior first
    axis = np.array([0.0, 0.0, -1.0])  # along another axis: the other way round
    assert [shuffled[i] for i in station_order([stations[i] for i in shuffled], axis)] == [2, 1, 0]
    moved = stations[:]
    random.Random(1).shuffle(moved)
    np.testing.assert_allclose(stacking_axis(moved), [0, 0, 1], atol=1e-9)


def test_gaps() -> None:
    full = smooth_volume()
    stations = [full[:, :, 0:24], full[:, :, 36:60]]  # the middle station is missing
    np.testing.assert_allclose(station_gaps(stations), [36.0])
    np.testing.assert_allclose(station_gaps(stations[::-1]), [36.0])
    with pytest.raises(StitchError) as info:
        check_gaps(stations, label="in: ")
    assert info.value.code == "STATION_GAP"
    assert info.value.message.startswith("in: ") and "36.0 mm after station 1" in info.value.message
    assert station_gaps(cut(full)[:2]) == [0.0]
    assert station_gaps([full[:, :, 0:30], full[:, :, 30:60]]) == [0.0]  # abutting
    assert station_gaps(stations[:1]) == []
    check_gaps(cut(full))


@pytest.mark.parametrize("orientation", ["LPS", "RAS", "PIL"])
def test_station_seams_lie_in_the_middle_of_each_overlap(orientation: str) -> None:
    full = smooth_volume()
    stations = [sitk.DICOMOrient(s, orientation) for s in cut(full)]  # overlaps 18-23, 36-41
    seams = station_seams([stations[i] for i in (2, 0, 1)])  # any order: lowest seam first
    assert seams.shape == (2, 3)
    z = [full.TransformPhysicalPointToContinuousIndex(tuple(p))[2] for p in seams]
    np.testing.assert_allclose(z, [20.5, 38.5], atol=1e-9)
    # on the line through the stations' centres
    np.testing.assert_allclose(seams[:, :2], [centre(full)[:2]] * 2, atol=1e-9)


def test_station_seams_of_abutting_stations_and_of_one_station() -> None:
    full = smooth_volume()
    seams = station_seams(cut(full, [(0, 30), (30, 60)]))
    assert full.TransformPhysicalPointToContinuousIndex(tuple(seams[0]))[2] == pytest.approx(29.5)
    assert station_seams(cut(full, [(0, 60)])).shape == (0, 3)
