"""Dixon fat fraction on a synthetic phantom with known fat fraction per region."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
from scipy import ndimage as ndi

from mrcohort.biomarkers.fat_fraction import dixon_fat_fraction, fat_fraction_stats

SPACING = (3.0, 2.23, 2.23)  # (sz, sy, sx) mm, UK Biobank-like
SNR = 20.0
PD = 100.0


@dataclass(frozen=True)
class DixonPhantom:
    labels: np.ndarray
    fat: np.ndarray
    water: np.ndarray
    in_phase: np.ndarray
    truth: dict[int, float]


def _magnitude(signal: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """|signal + complex Gaussian noise| (Rician magnitude)."""
    noise = rng.normal(0.0, sigma, signal.shape) + 1j * rng.normal(0.0, sigma, signal.shape)
    return np.abs(signal + noise)


def make_dixon_phantom(truth: dict[int, float], *, seed: int = 7) -> DixonPhantom:
    """Blocks of known fat fraction side by side; W = pd(1-FF), F = pd*FF, IP = |W+F|.

    Each channel gets independent complex Gaussian noise (sigma = pd / SNR) and is then
    taken as a magnitude.
    """
    rng = np.random.default_rng(seed)
    block = (16, 28, 28)
    shape = (block[0] + 4, block[1] + 4, len(truth) * block[2] + 4)
    labels = np.zeros(shape, dtype=np.uint8)
    ff_true = np.zeros(shape)
    for k, (lid, ff) in enumerate(truth.items()):
        x0 = 2 + k * block[2]
        region = (slice(2, 2 + block[0]), slice(2, 2 + block[1]), slice(x0, x0 + block[2]))
        labels[region] = lid
        ff_true[region] = ff
    water_true = PD * (1.0 - ff_true)
    fat_true = PD * ff_true
    sigma = PD / SNR
    return DixonPhantom(
        labels=labels,
        fat=_magnitude(fat_true, sigma, rng),
        water=_magnitude(water_true, sigma, rng),
        in_phase=_magnitude(water_true + fat_true, sigma, rng),
        truth=truth,
    )


# spleen, liver, left kidney, right gluteus maximus, pancreas
TRUTH = {1: 0.02, 5: 0.05, 3: 0.15, 36: 0.30, 7: 0.80}


@pytest.fixture(scope="module")
def phantom() -> DixonPhantom:
    return make_dixon_phantom(TRUTH)


def test_magnitude_discrimination_recovers_truth(phantom: DixonPhantom) -> None:
    recs = fat_fraction_stats(
        phantom.labels,
        fat=phantom.fat,
        water=phantom.water,
        in_phase=phantom.in_phase,
        spacing_mm=SPACING,
        label_ids=list(TRUTH),
    )
    assert [r.label_id for r in recs] == list(TRUTH)
    for rec in recs:
        truth = TRUTH[rec.label_id]
        assert abs(rec.ff_median - truth) < 0.005, (rec.label_name, rec.ff_median, truth)
        assert rec.ff_p25 <= rec.ff_median <= rec.ff_p75
        assert rec.ff_p25 >= 0.0 and rec.ff_p75 <= 1.0
        assert not rec.ff_erosion_fallback
        assert rec.ff_erosion_mm == 3.0
        assert not rec.swap_suspected  # pancreas is not checked; the others are lean


def test_plain_ratio_is_biased_at_low_ff(phantom: DixonPhantom) -> None:
    kw = {"spacing_mm": SPACING, "label_ids": [1, 5]}
    plain = fat_fraction_stats(phantom.labels, fat=phantom.fat, water=phantom.water, **kw)
    md = fat_fraction_stats(
        phantom.labels, fat=phantom.fat, water=phantom.water, in_phase=phantom.in_phase, **kw
    )
    for p, m in zip(plain, md, strict=True):
        truth = TRUTH[p.label_id]
        assert p.ff_median - truth > 0.02  # Rician noise floor inflates the fat signal
        assert abs(m.ff_median - truth) < abs(p.ff_median - truth)


def test_erosion_keeps_only_voxels_deeper_than_erosion_mm(phantom: DixonPhantom) -> None:
    """Eroded counts match scipy's per-label distance transform (independent check)."""
    labels = phantom.labels.copy()
    labels[8:12, 10:20, 60:90] = 12  # a second label cutting into two neighbours
    recs = fat_fraction_stats(
        labels,
        fat=phantom.fat,
        water=phantom.water,
        in_phase=phantom.in_phase,
        spacing_mm=SPACING,
        label_ids=[5, 3, 12],
        erosion_mm=4.0,
        min_voxels=1,
    )
    for rec in recs:
        dist = ndi.distance_transform_edt(labels == rec.label_id, sampling=SPACING)
        assert rec.ff_n_vox == int((dist > 4.0).sum())


def test_erosion_fallback_on_thin_structure() -> None:
    labels = np.zeros((9, 30, 30), dtype=np.uint8)
    labels[4, 5:25, 5:25] = 13  # one voxel thick: nothing is deeper than 3 mm
    fat = np.full(labels.shape, 10.0)
    water = np.full(labels.shape, 90.0)
    (rec,) = fat_fraction_stats(
        labels, fat=fat, water=water, in_phase=fat + water, spacing_mm=SPACING, label_ids=[13]
    )
    assert rec.ff_erosion_fallback
    assert rec.ff_n_vox == 400
    assert rec.ff_median == pytest.approx(0.1)
    (kept,) = fat_fraction_stats(
        labels, fat=fat, water=water, spacing_mm=SPACING, label_ids=[13], erosion_mm=0.0
    )
    assert not kept.ff_erosion_fallback and kept.ff_n_vox == 400


def test_swap_flag_for_liver() -> None:
    swapped = make_dixon_phantom({5: 0.8, 36: 0.1, 12: 0.9}, seed=3)
    recs = {
        r.label_id: r
        for r in fat_fraction_stats(
            swapped.labels,
            fat=swapped.fat,
            water=swapped.water,
            in_phase=swapped.in_phase,
            spacing_mm=SPACING,
        )
    }
    assert recs[5].swap_suspected  # liver at FF 0.8
    assert not recs[36].swap_suspected  # muscle at FF 0.1
    assert not recs[12].swap_suspected  # heart is not a swap-checked label


def test_empty_label_gives_nan_stats(phantom: DixonPhantom) -> None:
    (rec,) = fat_fraction_stats(
        phantom.labels, fat=phantom.fat, water=phantom.water, spacing_mm=SPACING, label_ids=[40]
    )
    assert rec.ff_n_vox == 0
    assert all(math.isnan(v) for v in (rec.ff_median, rec.ff_mean, rec.ff_p25, rec.ff_p75))
    assert not rec.ff_erosion_fallback and not rec.swap_suspected


def test_default_reports_all_labels(phantom: DixonPhantom) -> None:
    recs = fat_fraction_stats(
        phantom.labels, fat=phantom.fat, water=phantom.water, spacing_mm=SPACING
    )
    assert [r.label_id for r in recs] == list(range(1, 41))


def test_voxelwise_formulas_and_zero_denominators() -> None:
    f = np.array([10.0, 80.0, 0.0, 5.0, np.nan, 30.0])
    w = np.array([90.0, 20.0, 0.0, 95.0, 50.0, 70.0])
    ip = np.array([100.0, 100.0, 0.0, 90.0, 50.0, -1.0])
    md = dixon_fat_fraction(f, w, ip)
    assert md[0] == pytest.approx(0.1)  # water-dominant: 1 - W/IP
    assert md[1] == pytest.approx(0.8)  # fat-dominant: F/IP
    assert math.isnan(md[2])  # IP == 0
    assert md[3] == 0.0  # 1 - 95/90 < 0, clipped
    assert math.isnan(md[4])  # non-finite input
    assert math.isnan(md[5])  # IP <= 0
    plain = dixon_fat_fraction(f, w)
    assert plain[0] == pytest.approx(0.1)
    assert math.isnan(plain[2])  # F + W == 0


def test_nan_voxels_are_excluded() -> None:
    labels = np.zeros((5, 5, 5), dtype=np.uint8)
    labels[1:4, 1:4, 1:4] = 5
    fat = np.full(labels.shape, 20.0)
    water = np.full(labels.shape, 80.0)
    fat[2, 2, 2] = np.nan
    (rec,) = fat_fraction_stats(
        labels, fat=fat, water=water, spacing_mm=(1.0, 1.0, 1.0), label_ids=[5], erosion_mm=0
    )
    assert rec.ff_n_vox == 26
    assert rec.ff_mean == pytest.approx(0.2)


def test_input_validation() -> None:
    labels = np.zeros((4, 4, 4), dtype=np.uint8)
    img = np.ones((4, 4, 4))
    with pytest.raises(ValueError, match="shape"):
        fat_fraction_stats(labels, fat=img[:3], water=img, spacing_mm=SPACING)
    with pytest.raises(ValueError, match="erosion_mm"):
        fat_fraction_stats(labels, fat=img, water=img, spacing_mm=SPACING, erosion_mm=-1)
    with pytest.raises(ValueError, match="min_voxels"):
        fat_fraction_stats(labels, fat=img, water=img, spacing_mm=SPACING, min_voxels=0)
    with pytest.raises(ValueError, match="spacing_mm"):
        fat_fraction_stats(labels, fat=img, water=img, spacing_mm=(1.0, 1.0))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        fat_fraction_stats(labels, fat=img, water=img)  # type: ignore[call-arg]
