"""Tests for mrcohort.cohort.stitch: union grid, stitching one channel and all channels."""

from __future__ import annotations

import itertools
import random
import time

import numpy as np
import pytest
import SimpleITK as sitk

from mrcohort.cohort.geometry import station_seams
from mrcohort.cohort.stitch import place_stations, stitch, stitch_channels, union_grid
from mrcohort.errors import StitchError
from mrcohort.phantoms import SIGNAL_SCALE, make_participant, station_slices
from tests.builders import (
    CUTS,
    SEAM_SLICES,
    array,
    assert_same_grid,
    cut,
    smooth_volume,
    with_noise,
)


def voxelwise_maximum(stations: list[sitk.Image]) -> sitk.Image:
    """The seed's merge (benchmarks/stitch_baseline.py): the largest resampled value wins."""
    grid = union_grid(stations)
    resampled = [
        sitk.Resample(s, grid, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)
        for s in stations
    ]
    out = sitk.GetImageFromArray(np.max([sitk.GetArrayFromImage(r) for r in resampled], axis=0))
    out.CopyInformation(grid)
    return out


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


# --------------------------------------------------------------------------- missing stations


def test_missing_middle_station_is_a_gap() -> None:
    full = smooth_volume()
    stations = [full[:, :, 0:24], full[:, :, 36:60]]  # the middle station is missing
    with pytest.raises(StitchError) as info:
        stitch(stations)
    assert info.value.code == "STATION_GAP"
    assert "36.0 mm after station 1" in info.value.message
    with pytest.raises(StitchError) as info:
        stitch_channels({"in": stations, "w": stations})
    assert info.value.code == "STATION_GAP"

    out = array(stitch(stations, allow_gaps=True))  # zeros where nothing was acquired
    assert_same_grid(stitch(stations, allow_gaps=True), full)
    np.testing.assert_allclose(out[24:36], 0.0)
    np.testing.assert_allclose(out[:24], array(full)[:24], atol=1e-4)
    np.testing.assert_allclose(out[36:], array(full)[36:], atol=1e-4)


def test_missing_end_station_stitches_what_is_there() -> None:
    full = smooth_volume()
    stations = cut(full)[:2]
    out = stitch(stations)
    assert out.GetSize() == (40, 30, 42)
    np.testing.assert_allclose(array(out), array(full)[:42], atol=1e-4)


def test_abutting_stations_are_not_a_gap() -> None:
    full = smooth_volume()
    stations = [full[:, :, 0:30], full[:, :, 30:60]]
    np.testing.assert_allclose(array(stitch(stations)), array(full), atol=1e-4)


def test_absurd_grid_refused_before_allocating() -> None:
    full = smooth_volume()
    far = sitk.Image(full[:, :, 36:60])
    far.SetOrigin((-30.0, -20.0, 1e7))  # a wrong header: 10 km above
    t0 = time.perf_counter()
    with pytest.raises(StitchError) as info:
        stitch([full[:, :, 0:24], far], allow_gaps=True)
    assert info.value.code == "GRID_TOO_LARGE"
    with pytest.raises(StitchError) as info:
        stitch_channels({"in": [full[:, :, 0:24], far]}, allow_gaps=True)
    assert info.value.code == "GRID_TOO_LARGE"
    assert time.perf_counter() - t0 < 1.0  # nothing of that size was allocated
    with pytest.raises(StitchError) as info:
        stitch(cut(full), max_voxels=1000)
    assert info.value.code == "GRID_TOO_LARGE"


# --------------------------------------------------------------------------- grids


def test_stitch_onto_an_existing_grid() -> None:
    full = smooth_volume()
    like = sitk.Image((20, 15, 30), sitk.sitkUInt8)
    like.SetSpacing((3.0, 3.0, 6.0))
    like.SetOrigin(full.GetOrigin())
    out = stitch(cut(full), reference=like)
    assert_same_grid(out, like)
    expected = sitk.Resample(full, like, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)
    np.testing.assert_allclose(array(out), array(expected), atol=1e-3)
    channels_out = stitch_channels({"in": cut(full), "w": cut(full)}, reference=like)
    assert_same_grid(channels_out["w"], like)


def test_output_spacing_is_configurable() -> None:
    full = smooth_volume()
    out = stitch(cut(full), spacing=(3.0, 3.0, 1.5))
    assert out.GetSpacing() == (3.0, 3.0, 1.5)
    assert out.GetSize() == (21, 16, 119)  # 58.5 x 43.5 x 177 mm in 3 x 3 x 1.5 mm steps
    expected = sitk.Resample(full, out, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)
    np.testing.assert_allclose(array(out), array(expected), atol=1e-3)


def test_positions_from_content_for_all_channels() -> None:
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(4)
    texture = 100 + 40 * gaussian_filter(rng.normal(size=(60, 30, 40)), (2.0, 3.0, 3.0))
    truth = {"in": texture, "f": 0.3 * texture + 5}
    stations = {}
    for c, arr in truth.items():
        stations[c] = []
        for lo, hi in CUTS:
            img = sitk.GetImageFromArray(arr[lo:hi].astype(np.float32))
            img.SetSpacing((1.5, 1.5, 3.0))
            img.SetOrigin((-30.0, -20.0, -90.0))  # headers without positions
            stations[c].append(img)
    with pytest.raises(StitchError) as info:
        stitch_channels(stations)  # positions="header"
    assert info.value.code == "NO_POSITIONS"
    out = stitch_channels(stations, positions="auto")
    for c, arr in truth.items():
        np.testing.assert_allclose(array(out[c]), arr, atol=1e-3)
    assert_same_grid(out["in"], out["f"], tol=0)
    # placing first (to know where the seams are) and stitching the placed stations is the same
    placed = place_stations(stations, positions="auto")
    again = stitch_channels(placed, positions="auto")
    for c in truth:
        np.testing.assert_array_equal(array(again[c]), array(out[c]))
        assert_same_grid(again[c], out[c], tol=0)
    seams = station_seams(placed["in"])
    z = [out["in"].TransformPhysicalPointToContinuousIndex(tuple(p))[2] for p in seams]
    np.testing.assert_allclose(z, [20.5, 38.5], atol=1e-6)  # overlaps 18-23 and 36-41


def test_ramp_beats_the_voxelwise_maximum() -> None:
    full = smooth_volume()
    rng = np.random.default_rng(2)
    noisy = [with_noise(s, rng, 5.0) for s in cut(full)]
    merged = array(voxelwise_maximum(noisy))
    blended = array(stitch(noisy))
    seam = np.zeros(60, dtype=bool)
    seam[SEAM_SLICES] = True
    ref = array(full)
    # the maximum of two noisy samples is biased upwards; the ramp is not
    assert (merged - ref)[seam].mean() > 2.0
    assert abs((blended - ref)[seam].mean()) < 0.5
    np.testing.assert_array_equal(merged[~seam], blended[~seam])


# --------------------------------------------------------------------------- phantoms


def seam_errors(preset: str, channel: str = "in", seed: int = 5) -> dict[str, float]:
    """RMSE (inside the body) of ramp and max stitching against the noise-free phantom,
    in the overlap slices and away from them."""
    p = make_participant(seed, 0, preset)
    ref = array(p.reference[channel])
    cuts = station_slices(ref.shape[0], p.preset.n_stations, p.preset.overlap_slices)
    seam = np.zeros(ref.shape[0], dtype=bool)
    for (_, stop), (start, _) in itertools.pairwise(cuts):
        seam[start:stop] = True
    body = array(p.reference["in"]) > 0.1 * SIGNAL_SCALE
    at_seam, away = body & seam[:, None, None], body & ~seam[:, None, None]
    out: dict[str, float] = {}
    for name, fn in (("ramp", stitch), ("max", voxelwise_maximum)):
        err = array(fn(p.stations[channel])) - ref
        out[f"{name}_seam"] = float(np.sqrt(np.mean(err[at_seam] ** 2)))
        out[f"{name}_away"] = float(np.sqrt(np.mean(err[away] ** 2)))
        out[f"{name}_bias_seam"] = float(err[at_seam].mean())
    return out


@pytest.mark.parametrize("channel", ["in", "f"])
def test_seam_error_on_phantom(channel: str) -> None:
    e = seam_errors("mini", channel)
    print(channel, {k: round(v, 2) for k, v in e.items()})
    assert e["ramp_seam"] <= 1.5 * e["ramp_away"]
    assert e["ramp_seam"] < e["ramp_away"]  # two noisy stations averaged
    assert e["ramp_seam"] < e["max_seam"]
    assert e["max_bias_seam"] > e["ramp_bias_seam"] + 10.0


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["ukbb", "nako"])
def test_seam_error_full_size(preset: str) -> None:
    e = seam_errors(preset)
    print(preset, {k: round(v, 2) for k, v in e.items()})
    assert e["ramp_seam"] <= 1.5 * e["ramp_away"]
    assert e["ramp_seam"] < e["max_seam"]


@pytest.fixture(scope="module")
def mini_participant():
    return make_participant(7, 1, "mini")


@pytest.mark.parametrize(
    "orientations",
    [("RAS",) * 6, ("PIL",) * 6, ("LPS", "RAS", "PIL", "ASL", "LPI", "SRA")],
    ids=["RAS", "PIL", "mixed"],
)
def test_reoriented_phantom_stations(mini_participant, orientations) -> None:
    stations = mini_participant.stations["w"]
    ref = stitch(stations)
    moved = [sitk.DICOMOrient(s, o) for s, o in zip(stations, orientations, strict=True)]
    random.Random(0).shuffle(moved)
    out = stitch(moved)
    back = sitk.Resample(out, ref, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)
    np.testing.assert_allclose(array(back), array(ref), atol=1e-2)
    # and every channel of reoriented stations shares one grid
    chans = {
        c: [sitk.DICOMOrient(s, o) for s, o in zip(v, orientations, strict=True)]
        for c, v in mini_participant.stations.items()
    }
    out_ch = stitch_channels(chans)
    for c in out_ch:
        assert_same_grid(out_ch[c], out_ch["in"], tol=0)
