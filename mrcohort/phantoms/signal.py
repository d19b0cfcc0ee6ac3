"""The two-point Dixon signal model and the one noise model of every phantom.

A tissue with proton density ``pd`` and fat fraction ``ff`` gives water and fat signal

    W = pd * (1 - ff),  F = pd * ff,  in-phase = |W + F|,  opposed-phase = |W - F|

(times a signal scale). Scanners reconstruct magnitude images, so noise is complex Gaussian
added to the signed signal, then the magnitude is taken: Rician statistics
(:func:`rician_magnitude`, used by the Dixon stations, the T2 HASTE stand-in and the analytic
fixtures alike).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mrcohort.cohort.channels import CHANNELS

__all__ = [
    "SIGNAL_SCALE",
    "Tissue",
    "dixon_channels",
    "dixon_signals",
    "noisy_channels",
    "rician_magnitude",
    "water_fat",
]

#: Signal units: a proton density of 1 gives this many scanner units.
SIGNAL_SCALE = 1000.0


@dataclass(frozen=True)
class Tissue:
    """Proton density (relative) and fat fraction (0-1) of one tissue."""

    pd: float
    ff: float


def water_fat(
    pd: float | np.ndarray, ff: float | np.ndarray, *, scale: float = SIGNAL_SCALE
) -> tuple[float | np.ndarray, float | np.ndarray]:
    """Water and fat signal ``(pd (1 - ff) scale, pd ff scale)`` of a tissue (or arrays)."""
    return pd * (1 - ff) * scale, pd * ff * scale


def dixon_signals(water: np.ndarray, fat: np.ndarray) -> dict[str, np.ndarray]:
    """Signed (noise-free, before the magnitude) Dixon signal per channel."""
    return {"in": water + fat, "opp": water - fat, "w": water, "f": fat}


def dixon_channels(water: np.ndarray, fat: np.ndarray) -> dict[str, np.ndarray]:
    """Noise-free magnitude Dixon channels from (non-negative) water and fat signal."""
    return {ch: np.abs(s) for ch, s in dixon_signals(water, fat).items()}


def rician_magnitude(signal: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Magnitude of ``signal`` plus complex Gaussian noise of standard deviation ``sigma``.

    Draws the real-part noise, then the imaginary-part noise, from ``rng`` (this order is part
    of every phantom's determinism). Returns float32.
    """
    re = signal + rng.normal(0.0, sigma, signal.shape)
    im = rng.normal(0.0, sigma, signal.shape)
    return np.hypot(re, im).astype(np.float32)


def noisy_channels(
    water: np.ndarray,
    fat: np.ndarray,
    *,
    snr: float,
    rng: np.random.Generator,
    signal_scale: float = SIGNAL_SCALE,
    channels: Sequence[str] = CHANNELS,
) -> dict[str, np.ndarray]:
    """Magnitude Dixon channels with complex Gaussian noise (sigma = signal_scale / snr).

    Each channel gets its own noise realisation (magnitude images, Rician statistics), drawn
    in the order of ``channels``.
    """
    sigma = signal_scale / snr
    signals = dixon_signals(water, fat)
    return {ch: rician_magnitude(signals[ch], sigma, rng) for ch in channels}
