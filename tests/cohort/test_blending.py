"""Tests for mrcohort.cohort.blending: ramp weights, coverage, weighted mean in overlaps."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from mrcohort.cohort.blending import overlap_widths, ramp_weights
from mrcohort.cohort.stitch import stitch
from tests.builders import SEAM_SLICES, array, cut, smooth_volume, with_noise


def test_overlap_widths_and_ramp() -> None:
    widths = overlap_widths(np.array([[0.0, 100.0], [80.0, 200.0], [300.0, 400.0]]))
    np.testing.assert_allclose(widths, [[0, 20], [20, 0], [0, 0]])
    t = np.array([0.0, 80.0, 90.0, 100.0])
    np.testing.assert_allclose(ramp_weights(t, (0.0, 100.0), (0.0, 20.0)), [1, 1, 0.5, 0])
    np.testing.assert_allclose(ramp_weights(t, (80.0, 200.0), (20.0, 0.0)), [0, 0, 0.5, 1])


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


def test_copy_path_equals_resampling_path(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(11)
    stations = [with_noise(s, rng, 5.0) for s in cut(smooth_volume())]
    fast = array(stitch(stations))
    import mrcohort.cohort.blending as blending_module

    monkeypatch.setattr(blending_module, "_aligned_offset", lambda img, ref: None)
    slow = array(stitch(stations))
    np.testing.assert_allclose(fast, slow, atol=1e-3)


@pytest.mark.parametrize("seed", range(4))
def test_parallel_coverage_equals_resampled_coverage(seed: int) -> None:
    from mrcohort.cohort.blending import _coverage, _coverage_parallel

    rng = np.random.default_rng(seed)
    img = sitk.Image((7, 6, 5), sitk.sitkFloat32)
    img.SetSpacing(tuple(rng.uniform(0.8, 3.0, 3)))
    img.SetOrigin(tuple(rng.uniform(-5, 5, 3)))
    ref = sitk.Image((15, 14, 13), sitk.sitkUInt8)
    ref.SetSpacing(tuple(rng.uniform(0.7, 2.0, 3)))
    ref.SetOrigin(tuple(np.asarray(img.GetOrigin()) - rng.uniform(1, 6, 3)))
    for image in (img, ref):  # same (oblique) direction for both
        image.SetDirection(
            tuple(np.linalg.qr(np.random.default_rng(9).normal(size=(3, 3)))[0].ravel())
        )
    np.testing.assert_array_equal(_coverage_parallel(img, ref), _coverage(img, ref))
    other = sitk.Image(img)
    other.SetDirection((0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0))
    assert _coverage_parallel(other, ref) is None


def _whole_grid_mean(stations: list[sitk.Image], ref: sitk.Image) -> np.ndarray:
    """The weighted mean computed over the whole grid at once (the definition)."""
    from mrcohort.cohort.blending import _resample, _station_weights

    weights, _ = _station_weights(stations, ref)
    shape = tuple(reversed(ref.GetSize()))
    num, den = np.zeros(shape, np.float32), np.zeros(shape, np.float32)
    for img, w in zip(stations, weights, strict=True):
        if w is None:
            continue
        values = sitk.GetArrayViewFromImage(img) if w.aligned else _resample(img, w.sub)
        num[w.block] += w.weight * values
        den[w.block] += w.weight
    covered = den > 0
    np.divide(num, den, out=num, where=covered)
    num[~covered] = 0.0
    return num


def _moved(img: sitk.Image, shift_vox: tuple[float, float, float]) -> sitk.Image:
    out = sitk.Image(img)
    out.SetOrigin(tuple(np.add(img.GetOrigin(), np.multiply(shift_vox, img.GetSpacing()))))
    return out


def _narrow(img: sitk.Image) -> sitk.Image:
    return img[3:35, 2:27, :]  # aligned, but covering only part of the plane


STATION_SETS = {
    "aligned": lambda s: s,
    "shifted": lambda s: [_moved(x, (0.3, -0.2, 0.25 * k)) for k, x in enumerate(s)],
    "one_shifted": lambda s: [s[0], _moved(s[1], (0.0, 0.0, 0.4)), s[2]],
    "narrow_middle": lambda s: [s[0], _narrow(s[1]), s[2]],
    "gap": lambda s: [s[0], s[2]],
}


@pytest.mark.parametrize("case", sorted(STATION_SETS))
def test_blend_equals_the_whole_grid_weighted_mean(case: str) -> None:
    from mrcohort.cohort.blending import blend
    from mrcohort.cohort.stitch import union_grid

    rng = np.random.default_rng(3)
    stations = STATION_SETS[case]([with_noise(s, rng, 5.0) for s in cut(smooth_volume())])
    ref = union_grid(stations)
    got = blend({"a": stations, "b": stations}, ref)
    expected = _whole_grid_mean(stations, ref)
    for img in got.values():
        np.testing.assert_array_equal(sitk.GetArrayViewFromImage(img), expected)
