"""Tests for mrcohort.cohort.placement: stations placed from content (no header positions)."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest
import SimpleITK as sitk

from mrcohort.cohort.placement import (
    ContentPlacement,
    _best_chain,
    _greedy_chain,
    apply_placement,
    estimate_placement,
    lacks_positions,
    overlap_scores,
)
from mrcohort.cohort.stitch import stitch
from mrcohort.errors import StitchError
from tests.conftest import shared_data


def textured_volume(nz: int = 90, seed: int = 0) -> np.ndarray:
    """Smooth random texture (z, y, x) = (nz, 40, 48): neighbouring slices alike, far not."""
    rng = np.random.default_rng(seed)
    from scipy.ndimage import gaussian_filter

    return (100 + 40 * gaussian_filter(rng.normal(size=(nz, 40, 48)), (2.0, 3, 3))).astype(
        np.float32
    )


def cut_stations(
    arr: np.ndarray, lengths: list[int], overlaps: list[int], *, origin_z: float = 0.0
) -> list[sitk.Image]:
    """Stations cut from ``arr`` along z, consecutive ones sharing ``overlaps`` slices,
    every station written with the SAME origin (headers without positions)."""
    out, start = [], 0
    for i, n in enumerate(lengths):
        img = sitk.GetImageFromArray(arr[start : start + n])
        img.SetSpacing((1.5, 1.5, 6.0))
        img.SetOrigin((0.0, 0.0, origin_z))
        out.append(img)
        if i < len(overlaps):
            start += n - overlaps[i]
    return out


def test_overlap_scores_peak_at_true_overlap() -> None:
    arr = textured_volume().reshape(90, -1).astype(np.float64)
    lower, upper = arr[:30], arr[24:54]  # they share 6 slices
    scores = overlap_scores(lower, upper, max_overlap=12)
    assert scores.shape == (12,)
    assert int(np.argmax(scores)) + 1 == 6
    assert scores[5] == pytest.approx(1.0, abs=1e-9)
    # independent check of one entry: Pearson correlation of the flattened slices
    n = 4
    expected = np.corrcoef(lower[-n:].ravel(), upper[:n].ravel())[0, 1]
    assert scores[n - 1] == pytest.approx(expected, abs=1e-9)


def test_overlap_scores_constant_data() -> None:
    flat = np.ones((5, 10))
    assert np.all(overlap_scores(flat, flat, max_overlap=3) == -1.0)


def brute_force_chain(score: np.ndarray) -> float:
    """Best total over all orders (independent of the dynamic programme)."""
    return max(
        sum(score[a, b] for a, b in itertools.pairwise(p))
        for p in itertools.permutations(range(len(score)))
    )


@pytest.mark.parametrize("seed", range(5))
def test_best_chain_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    score = rng.uniform(-1, 1, (6, 6))
    order = _best_chain(score)
    assert sorted(order) == list(range(6))
    total = sum(score[a, b] for a, b in itertools.pairwise(order))
    assert total == pytest.approx(brute_force_chain(score))


def test_greedy_chain_is_a_permutation() -> None:
    rng = np.random.default_rng(1)
    score = rng.uniform(-1, 1, (15, 15))
    assert sorted(_greedy_chain(score)) == list(range(15))
    chain = np.full((4, 4), -1.0)
    for a, b in [(2, 0), (0, 3), (3, 1)]:
        chain[a, b] = 1.0
    assert _greedy_chain(chain) == [2, 0, 3, 1]


@pytest.mark.parametrize("seed", range(3))
def test_order_and_overlaps_recovered_from_shuffled_stations(seed: int) -> None:
    arr = textured_volume(seed=seed)
    overlaps = [5, 7, 4]
    stations = cut_stations(arr, [26, 26, 26, 26], overlaps)
    assert lacks_positions(stations)
    perm = list(range(4))
    random.Random(seed).shuffle(perm)
    placement = estimate_placement([stations[i] for i in perm])
    assert [perm[i] for i in placement.order] == [0, 1, 2, 3]
    assert placement.overlaps == tuple(overlaps)
    assert all(s > 0.99 for s in placement.scores)

    placed = apply_placement([stations[i] for i in perm], placement)
    assert not lacks_positions(placed)
    out = sitk.GetArrayFromImage(stitch(placed))
    total = 26 * 4 - sum(overlaps)
    np.testing.assert_allclose(out, arr[:total], atol=1e-3)


def test_keep_given_order() -> None:
    stations = cut_stations(textured_volume(), [30, 30], [8])
    placement = estimate_placement(stations, search_order=False)
    assert placement.order == (0, 1) and placement.overlaps == (8,)


def test_apply_placement_moves_along_slice_axis_in_any_orientation() -> None:
    # the slice axis (index axis 2) points left (-x in LPS): placement follows it
    stations = cut_stations(textured_volume(), [20, 20], [3])
    direction = (0.0, 0.0, -1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0)
    for s in stations:
        s.SetDirection(direction)
    placed = apply_placement(stations, ContentPlacement((0, 1), (3,), (1.0,)))
    np.testing.assert_allclose(placed[0].GetOrigin(), (0, 0, 0))
    np.testing.assert_allclose(placed[1].GetOrigin(), (-17 * 6.0, 0, 0))
    assert stations[1].GetOrigin() == (0.0, 0.0, 0.0)  # inputs untouched


def test_lacks_positions() -> None:
    stations = cut_stations(textured_volume(), [20, 20], [3])
    assert lacks_positions(stations)
    assert not lacks_positions(stations[:1])
    stations[1].SetOrigin((0.0, 0.0, 102.0))
    assert not lacks_positions(stations)


def test_different_grids_refused() -> None:
    stations = cut_stations(textured_volume(), [20, 20], [3])
    stations[1].SetSpacing((1.5, 1.5, 5.0))
    with pytest.raises(StitchError) as info:
        estimate_placement(stations)
    assert info.value.code == "GRID_MISMATCH"


def slice_ncc(arr: np.ndarray) -> np.ndarray:
    """NCC of every pair of consecutive slices (z), NaN where a slice is constant."""
    out = []
    for lower, upper in itertools.pairwise(arr.astype(np.float64)):
        a, b = lower - lower.mean(), upper - upper.mean()
        den = np.sqrt((a * a).sum() * (b * b).sum())
        out.append((a * b).sum() / den if den > 0 else np.nan)
    return np.asarray(out)


def seam_continuity(stations: list[np.ndarray], out: np.ndarray, overlaps) -> list[float]:
    """Per seam: (worst consecutive-slice NCC of the result across the seam) divided by
    (worst consecutive-slice NCC within the stations' own edge slices there)."""
    ratios, start = [], 0
    for i, ov in enumerate(overlaps):
        lower, upper = stations[i], stations[i + 1]
        start += len(lower) - ov  # first slice of the upper station in the result
        across = slice_ncc(out[start - 1 : start + ov + 1])
        own = np.concatenate([slice_ncc(lower[-(ov + 2) :]), slice_ncc(upper[: ov + 2])])
        ratios.append(float(np.nanmin(across) / np.nanmin(own)))
    return ratios


@pytest.mark.shared_data
def test_real_leg_stations_join_1_to_7() -> None:
    qmri = shared_data("qmritools")
    paths = [qmri / f"Join_{i}.nii.gz" for i in range(1, 8)]
    stations = [sitk.ReadImage(str(p), sitk.sitkFloat32) for p in paths]
    assert lacks_positions(stations)  # all seven share one origin
    perm = [4, 1, 6, 0, 2, 5, 3]
    placement = estimate_placement([stations[i] for i in perm])
    found = [perm[i] + 1 for i in placement.order]
    print(
        f"Join order found {found}, overlaps {placement.overlaps} slices, "
        f"NCC {np.round(placement.scores, 3).tolist()}"
    )
    assert found == [1, 2, 3, 4, 5, 6, 7]  # feet to pelvis
    assert placement.overlaps == (5, 5, 5, 5, 5, 5)

    out = stitch([stations[i] for i in perm], positions="content")
    arrays = [sitk.GetArrayFromImage(s) for s in stations]
    result = sitk.GetArrayFromImage(out)
    assert result.shape[0] == 7 * 31 - 6 * 5
    ratios = seam_continuity(arrays, result, placement.overlaps)
    print("seam continuity (result / own edges):", np.round(ratios, 2).tolist())
    assert min(ratios) >= 0.8
    # the criterion can fail: stations butted together without overlap are discontinuous
    naive = np.concatenate(arrays)
    assert min(seam_continuity(arrays, naive, (0,) * 6)) < 0.8
