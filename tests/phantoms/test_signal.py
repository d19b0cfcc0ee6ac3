"""The Dixon signal and noise model (mrcohort.phantoms.signal)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from SimpleITK import GetArrayFromImage as voxels

from mrcohort.labels import MRSEG_IDS
from mrcohort.phantoms.signal import (
    SIGNAL_SCALE,
    dixon_channels,
    noisy_channels,
    rician_magnitude,
    water_fat,
)


def test_dixon_signal_model(participant):
    ref = {ch: voxels(img).astype(np.float64) for ch, img in participant.reference.items()}
    np.testing.assert_allclose(ref["in"], ref["w"] + ref["f"], atol=1e-3)
    np.testing.assert_allclose(ref["opp"], np.abs(ref["w"] - ref["f"]), atol=1e-3)
    lab = voxels(participant.labels)
    liver = lab == MRSEG_IDS["liver"]
    true_ff = next(r["fat_fraction"] for r in participant.truth if r["label_id"] == 5)
    inner = liver & (np.roll(liver, 2, 0) & np.roll(liver, -2, 0))
    ff = ref["f"][inner] / (ref["f"][inner] + ref["w"][inner])
    assert np.median(ff) == pytest.approx(true_ff, abs=1e-6)


def test_station_noise_level_matches_snr(participant):
    """Air is pure complex noise: Rayleigh mean sigma*sqrt(pi/2) with sigma = scale/snr."""
    first = voxels(participant.stations["w"][0]).astype(np.float64)
    ref = voxels(participant.reference["w"])[: first.shape[0]]
    air = ref == 0
    sigma = SIGNAL_SCALE / 20.0
    assert first[air].mean() == pytest.approx(sigma * math.sqrt(math.pi / 2), rel=0.03)


def test_water_fat_and_noise_free_channels():
    w, f = water_fat(0.8, 0.25)
    assert (w, f) == pytest.approx((600.0, 200.0))
    ch = dixon_channels(np.array([w, 10.0]), np.array([f, 30.0]))
    np.testing.assert_allclose(ch["in"], [800.0, 40.0])
    np.testing.assert_allclose(ch["opp"], [400.0, 20.0])


def test_rician_magnitude_statistics():
    rng = np.random.default_rng(0)
    sigma = 10.0
    out = rician_magnitude(np.full(200_000, 100.0), sigma, rng)
    assert out.dtype == np.float32
    # E|S + n|^2 = S^2 + 2 sigma^2 for complex Gaussian noise
    assert np.mean(out.astype(np.float64) ** 2) == pytest.approx(100.0**2 + 2 * sigma**2, rel=5e-3)


def test_noisy_channels_is_rician_magnitude_per_channel_in_order():
    water, fat = np.full((2, 3), 300.0, np.float32), np.full((2, 3), 100.0, np.float32)
    got = noisy_channels(
        water, fat, snr=10.0, rng=np.random.default_rng(4), channels=("f", "in", "opp")
    )
    rng = np.random.default_rng(4)
    sigma = SIGNAL_SCALE / 10.0
    for ch, signal in (("f", fat), ("in", water + fat), ("opp", water - fat)):
        np.testing.assert_array_equal(got[ch], rician_magnitude(signal, sigma, rng))
    assert list(got) == ["f", "in", "opp"]
