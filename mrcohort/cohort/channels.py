"""Channels of one acquisition: Dixon channel names, their canonical order, and the check
that every channel's stations can share one grid (geometry only, no resampling)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import SimpleITK as sitk

from mrcohort.cohort.geometry import (
    check_gaps,
    corners,
    direction,
    stacking_axis,
    station_order,
)
from mrcohort.errors import StitchError

__all__ = ["CHANNELS", "canonical_order", "check_channels", "check_station_counts"]

#: In-phase, opposed-phase, water, fat — the four Dixon channels, in this canonical order.
CHANNELS: tuple[str, ...] = ("in", "opp", "w", "f")
#: Two axes are parallel when the |cosine| between them exceeds 1 - this.
_PARALLEL_TOL = 1e-4


def canonical_order(names: Iterable[str]) -> list[str]:
    """Channel names in canonical order: the Dixon ones (:data:`CHANNELS`) first, others sorted."""
    names = set(names)
    return [c for c in CHANNELS if c in names] + sorted(names - set(CHANNELS))


def check_station_counts(stations: Mapping[str, Sequence[sitk.Image]]) -> None:
    """Raise unless every channel has stations, all channels the same number.

    Raises
    ------
    StitchError
        ``NO_STATIONS``, ``STATION_MISMATCH``.
    """
    if not stations or any(len(v) == 0 for v in stations.values()):
        raise StitchError("NO_STATIONS", "every channel needs at least one station")
    counts = {c: len(stations[c]) for c in canonical_order(stations)}
    if len(set(counts.values())) > 1:
        raise StitchError("STATION_MISMATCH", f"stations per channel differ: {counts}")


def _inplane_mismatch(
    a: sitk.Image, b: sitk.Image, axis: np.ndarray, *, tolerance_mm: float
) -> str:
    """Why two stations' in-plane grids differ; ``""`` when they match.

    Axes may be permuted or flipped between the two (e.g. LPS vs RAS); compared are the
    axis directions, spacing, size and extent of every axis except the stacking one.
    """
    da, db = direction(a), direction(b)
    stack = int(np.argmax(np.abs(da.T @ axis)))
    for k in range(3):
        cos = np.abs(db.T @ da[:, k])
        j = int(np.argmax(cos))
        if cos[j] < 1 - _PARALLEL_TOL:
            return f"axis {k} directions differ"
        if k == stack:
            continue
        if abs(a.GetSpacing()[k] - b.GetSpacing()[j]) > tolerance_mm:
            return f"spacing {a.GetSpacing()[k]} vs {b.GetSpacing()[j]} mm"
        if a.GetSize()[k] != b.GetSize()[j]:
            return f"size {a.GetSize()[k]} vs {b.GetSize()[j]}"
        pa, pb = corners(a) @ da[:, k], corners(b) @ da[:, k]
        shift = max(abs(pa.min() - pb.min()), abs(pa.max() - pb.max()))
        if shift > tolerance_mm:
            return f"field of view shifted by {shift:.3f} mm"
    return ""


def check_channels(
    stations: Mapping[str, Sequence[sitk.Image]],
    *,
    tolerance_mm: float = 0.01,
    allow_gaps: bool = False,
) -> dict[str, list[sitk.Image]]:
    """Check that channels can share one grid; return their stations ordered along the stack.

    Cheap (geometry only, no resampling): loading runs it to fail early.

    Parameters
    ----------
    stations
        Channel -> station images (any order within a channel), positions in the headers.
    tolerance_mm
        How far the in-plane grids of stations of the same index may differ between
        channels (spacing and field-of-view edges).
    allow_gaps
        Accept stations that leave a gap along the stack.

    Returns
    -------
    dict
        Channel -> stations ordered along the stacking axis (lowest first); channels in
        canonical order (``in``, ``opp``, ``w``, ``f``), others after.

    Raises
    ------
    StitchError
        ``NO_STATIONS``, ``STATION_MISMATCH``, ``GRID_MISMATCH``, ``STATION_GAP``.
    """
    check_station_counts(stations)
    names = canonical_order(stations)
    everything = [img for c in names for img in stations[c]]
    axis = stacking_axis(everything)
    ordered = {c: [stations[c][i] for i in station_order(stations[c], axis)] for c in names}
    first = names[0]
    for c in names[1:]:
        for i, (a, b) in enumerate(zip(ordered[first], ordered[c], strict=True)):
            why = _inplane_mismatch(a, b, axis, tolerance_mm=tolerance_mm)
            if why:
                raise StitchError(
                    "GRID_MISMATCH", f"station {i + 1}: channel {c!r} vs {first!r}: {why}"
                )
    if not allow_gaps:
        check_gaps(ordered[first], label=f"channel {first!r}: ")
    return ordered
