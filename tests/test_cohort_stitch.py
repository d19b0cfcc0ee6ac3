"""Tests for mrcohort.cohort.stitch: union grid, linear-ramp blending, one grid per channel."""

from __future__ import annotations

import random

import numpy as np
import pytest
import SimpleITK as sitk

from mrcohort.cohort.stitch import (
    overlap_widths,
    ramp_weights,
    stacking_axis,
    stitch,
    stitch_channels,
    union_grid,
)
from mrcohort.errors import StitchError

# stations cut from a 40 x 30 x 60 volume (x, y, z), overlapping by 6 slices
CUTS = [(0, 24), (18, 42), (36, 60)]
SEAM_SLICES = [z for lo, hi in zip(CUTS[1:], CUTS[:-1], strict=True) for z in range(lo[0], hi[1])]


def smooth_volume(offset: float = 0.0) -> sitk.Image:
    """Known smooth 3D image, shape (z, y, x) = (60, 30, 40), 1.5 x 1.5 x 3 mm."""
    z, y, x = np.mgrid[0:60, 0:30, 0:40].astype(float)
    arr = 100 + offset + 20 * np.sin(x / 7) + 15 * np.cos(y / 5) + 10 * np.sin(z / 9)
    img = sitk.GetImageFromArray(arr.astype(np.float32))
    img.SetSpacing((1.5, 1.5, 3.0))
    img.SetOrigin((-30.0, -20.0, -90.0))
    return img


def cut(img: sitk.Image, cuts=CUTS) -> list[sitk.Image]:
    """Stations = z slabs of the volume."""
    return [img[:, :, lo:hi] for lo, hi in cuts]


def with_noise(img: sitk.Image, rng: np.random.Generator, sigma: float) -> sitk.Image:
    """Copy of img plus independent Gaussian noise."""
    arr = sitk.GetArrayFromImage(img)
    out = sitk.GetImageFromArray((arr + rng.normal(0, sigma, arr.shape)).astype(np.float32))
    out.CopyInformation(img)
    return out


def array(img: sitk.Image) -> np.ndarray:
    """Array (z, y, x) as float64."""
    return sitk.GetArrayFromImage(img).astype(np.float64)


def assert_same_grid(a: sitk.Image, b: sitk.Image, tol: float = 1e-6) -> None:
    """Same size, spacing, origin, direction."""
    assert a.GetSize() == b.GetSize()
    np.testing.assert_allclose(a.GetSpacing(), b.GetSpacing(), atol=tol)
    np.testing.assert_allclose(a.GetOrigin(), b.GetOrigin(), atol=tol)
    np.testing.assert_allclose(a.GetDirection(), b.GetDirection(), atol=tol)


def test_union_grid_covers_stations() -> None:
    full = smooth_volume()
    grid = union_grid(cut(full))
    assert_same_grid(grid, full)
    fine = union_grid(cut(full), spacing=(0.75, 1.5, 1.5))
    assert fine.GetSize() == (79, 30, 119)
    np.testing.assert_allclose(fine.GetOrigin(), full.GetOrigin())


def test_union_grid_spacing_from_lowest_station_in_any_order() -> None:
    full = smooth_volume()
    low = full[:, :, 0:24]
    high = sitk.Resample(
        full[:, :, 18:60],
        (40, 30, 14),  # z from -36 to +81 mm
        sitk.Transform(),
        sitk.sitkLinear,
        full[:, :, 18:60].GetOrigin(),
        (1.5, 1.5, 9.0),
        full.GetDirection(),
    )
    for order in ([low, high], [high, low]):
        grid = union_grid(order)
        assert grid.GetSpacing() == (1.5, 1.5, 3.0)
        assert grid.GetSize() == (40, 30, 58)  # -90 .. +81 mm at 3 mm


def test_exact_data_is_reproduced() -> None:
    full = smooth_volume()
    out = stitch(cut(full))
    assert_same_grid(out, full)
    assert out.GetPixelID() == sitk.sitkFloat32
    err = np.abs(array(out) - array(full))
    assert err.max() < 1e-4
    assert err[SEAM_SLICES].max() < 1e-4


def test_overlap_is_a_linear_ramp() -> None:
    full = smooth_volume()
    zeros = sitk.Image((40, 30, 24), sitk.sitkFloat32)
    ones = zeros + 1.0
    low, high = zeros, ones
    low.SetOrigin(full.GetOrigin())
    low.SetSpacing(full.GetSpacing())
    high.SetSpacing(full.GetSpacing())
    high.SetOrigin(full.TransformIndexToPhysicalPoint((0, 0, 18)))
    profile = array(stitch([low, high]))[:, 10, 10]
    np.testing.assert_allclose(profile[:18], 0.0, atol=1e-6)
    np.testing.assert_allclose(profile[18:24], np.linspace(0, 1, 6), atol=1e-6)
    np.testing.assert_allclose(profile[24:], 1.0, atol=1e-6)


def test_noise_at_seams_not_worse_than_elsewhere() -> None:
    full = smooth_volume()
    rng = np.random.default_rng(7)
    noisy = [with_noise(s, rng, 5.0) for s in cut(full)]
    err = array(stitch(noisy)) - array(full)
    seam = np.zeros(60, dtype=bool)
    seam[SEAM_SLICES] = True
    rmse_seam = np.sqrt(np.mean(err[seam] ** 2))
    rmse_rest = np.sqrt(np.mean(err[~seam] ** 2))
    assert rmse_seam <= 1.5 * rmse_rest
    assert rmse_seam < rmse_rest  # averaging two noisy stations beats taking one


def test_shuffled_stations_same_result() -> None:
    rng = np.random.default_rng(3)
    stations = [with_noise(s, rng, 5.0) for s in cut(smooth_volume())]
    ref = stitch(stations)
    shuffled = stations[:]
    random.Random(5).shuffle(shuffled)
    shuffled = shuffled if shuffled != stations else stations[::-1]
    out = stitch(shuffled)
    assert_same_grid(out, ref)
    np.testing.assert_allclose(array(out), array(ref), atol=1e-5)


@pytest.mark.parametrize("orientation", ["RAS", "PIL"])
def test_reoriented_stations_same_result(orientation: str) -> None:
    rng = np.random.default_rng(4)
    stations = [with_noise(s, rng, 5.0) for s in cut(smooth_volume())]
    ref = stitch(stations)
    moved = stitch([sitk.DICOMOrient(s, orientation) for s in stations])
    back = sitk.Resample(moved, ref, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)
    np.testing.assert_allclose(array(back), array(ref), atol=1e-4)


def test_stacking_axis_points_superior() -> None:
    stations = cut(smooth_volume())
    np.testing.assert_allclose(stacking_axis(stations), [0, 0, 1], atol=1e-9)
    np.testing.assert_allclose(stacking_axis(stations[::-1]), [0, 0, 1], atol=1e-9)
    np.testing.assert_allclose(stacking_axis(stations[:1]), [0, 0, 1], atol=1e-9)


def test_overlap_widths_and_ramp() -> None:
    widths = overlap_widths(np.array([[0.0, 100.0], [80.0, 200.0], [300.0, 400.0]]))
    np.testing.assert_allclose(widths, [[0, 20], [20, 0], [0, 0]])
    t = np.array([0.0, 80.0, 90.0, 100.0])
    np.testing.assert_allclose(ramp_weights(t, (0.0, 100.0), (0.0, 20.0)), [1, 1, 0.5, 0])
    np.testing.assert_allclose(ramp_weights(t, (80.0, 200.0), (20.0, 0.0)), [0, 0, 0.5, 1])


def channels(full_offsets: dict[str, float]) -> dict[str, list[sitk.Image]]:
    """Channel -> stations cut from a shifted copy of the smooth volume."""
    return {c: cut(smooth_volume(off)) for c, off in full_offsets.items()}


def test_stitch_channels_one_grid() -> None:
    stations = channels({"in": 0.0, "opp": -50.0, "w": 10.0, "f": 20.0})
    stations["f"] = stations["f"][::-1]  # order within a channel does not matter
    out = stitch_channels(stations)
    assert list(out) == ["in", "opp", "w", "f"]
    for c, off in {"in": 0.0, "opp": -50.0, "w": 10.0, "f": 20.0}.items():
        assert_same_grid(out[c], out["in"], tol=0)
        np.testing.assert_allclose(array(out[c]), array(smooth_volume(off)), atol=1e-4)


def test_stitch_channels_grid_is_union_of_all_channels() -> None:
    stations = channels({"in": 0.0, "opp": 0.0, "w": 0.0, "f": 0.0})
    # the fat channel's top station reaches 2 slices higher: every channel gets that grid
    full = smooth_volume()
    taller = sitk.Resample(
        full[:, :, 36:60],
        (40, 30, 26),
        sitk.Transform(),
        sitk.sitkLinear,
        full.TransformIndexToPhysicalPoint((0, 0, 36)),
        full.GetSpacing(),
        full.GetDirection(),
    )
    stations["f"][2] = taller
    out = stitch_channels(stations)
    for c in out:
        assert out[c].GetSize() == (40, 30, 62)
        assert_same_grid(out[c], out["f"], tol=0)


def test_stitch_channels_spacing_override() -> None:
    out = stitch_channels(channels({"in": 0.0, "w": 1.0}), spacing=(3.0, 3.0, 3.0))
    assert out["in"].GetSpacing() == (3.0, 3.0, 3.0)
    # 58.5 x 43.5 x 177 mm of voxel centres -> 20 x 15 x 59 steps of 3 mm
    assert out["in"].GetSize() == out["w"].GetSize() == (21, 16, 60)


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


def test_station_count_mismatch_and_empty() -> None:
    stations = channels({"in": 0.0, "w": 0.0})
    stations["w"] = stations["w"][:2]
    with pytest.raises(StitchError) as info:
        stitch_channels(stations)
    assert info.value.code == "STATION_MISMATCH"
    with pytest.raises(StitchError) as info:
        stitch_channels({"in": []})
    assert info.value.code == "NO_STATIONS"
    with pytest.raises(StitchError):
        stitch([])
