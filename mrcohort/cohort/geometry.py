"""Station geometry (world LPS, mm): where a station is and how stations line up.

Direction matrix, corners and centre of a station's voxel-centre box, the axis the stations
are stacked along, their order along it, extents and gaps. The one implementation used by
stitching (:mod:`mrcohort.cohort.stitch`, :mod:`mrcohort.cohort.blending`), the channel
checks (:mod:`mrcohort.cohort.channels`), content placement
(:mod:`mrcohort.cohort.placement`) and the loader's station order
(:mod:`mrcohort.cohort.load`). Works for stations in any orientation (LPS, RAS, PIL, ...).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import SimpleITK as sitk

from mrcohort.errors import StitchError

__all__ = [
    "centre",
    "check_gaps",
    "corners",
    "direction",
    "extent_along",
    "stacking_axis",
    "station_gaps",
    "station_order",
    "station_seams",
    "step_along",
]


def direction(img: sitk.Image) -> np.ndarray:
    """Direction matrix, shape (3, 3); column k is the world direction of index axis k."""
    return np.asarray(img.GetDirection(), dtype=float).reshape(3, 3)


def corners(img: sitk.Image) -> np.ndarray:
    """World (LPS, mm) positions of the 8 corners of the voxel-centre box, shape (8, 3)."""
    hi = np.asarray(img.GetSize(), dtype=float) - 1
    ijk = np.array([[i, j, k] for i in (0, hi[0]) for j in (0, hi[1]) for k in (0, hi[2])])
    step = direction(img) * np.asarray(img.GetSpacing(), dtype=float)  # columns scaled
    return np.asarray(img.GetOrigin(), dtype=float) + ijk @ step.T


def centre(img: sitk.Image) -> np.ndarray:
    """World position of the centre of the voxel-centre box, shape (3,)."""
    return corners(img).mean(axis=0)


def stacking_axis(stations: Sequence[sitk.Image]) -> np.ndarray:
    """Unit world vector along which the stations are stacked, shape (3,).

    The principal direction of the station centres; with fewer than two distinct centres,
    the first station's slice axis. The sign makes the largest component positive (for
    axial stations in LPS: +S, i.e. inferior -> superior).

    Parameters
    ----------
    stations
        At least one image.
    """
    centres = np.stack([centre(s) for s in stations])
    spread = centres - centres.mean(axis=0)
    if len(stations) > 1 and np.linalg.norm(spread) > 1e-6:
        axis = np.linalg.svd(spread, full_matrices=False)[2][0]
    else:
        axis = direction(stations[0])[:, 2]
    axis = axis / np.linalg.norm(axis)
    return axis if axis[np.argmax(np.abs(axis))] > 0 else -axis


def station_order(stations: Sequence[sitk.Image], axis: np.ndarray | None = None) -> list[int]:
    """Indices of the stations sorted along ``axis`` by their centres (stable for ties).

    Parameters
    ----------
    stations
        Station images, any order.
    axis
        Unit world vector; default :func:`stacking_axis` of ``stations`` (lowest first
        means inferior first for axial stations).
    """
    axis = stacking_axis(stations) if axis is None else axis
    keys = [float(centre(s) @ axis) for s in stations]
    return sorted(range(len(stations)), key=lambda i: keys[i])


def extent_along(img: sitk.Image, axis: np.ndarray) -> tuple[float, float]:
    """``(t_min, t_max)`` of a station's voxel-centre box projected on ``axis`` (mm)."""
    p = corners(img) @ axis
    return float(p.min()), float(p.max())


def step_along(img: sitk.Image, axis: np.ndarray) -> float:
    """Voxel step of an image along a world axis (its largest contribution, mm)."""
    return float(np.max(np.abs(axis @ direction(img)) * np.asarray(img.GetSpacing())))


def station_gaps(stations: Sequence[sitk.Image]) -> list[float]:
    """Uncovered distance between consecutive stations along the stack (mm).

    Parameters
    ----------
    stations
        Stations of one channel, any order.

    Returns
    -------
    list of float, length ``n - 1``
        For each pair of neighbours along the stacking axis: how far apart their voxel-
        centre extents are beyond one slice step (0 when they overlap or abut).
    """
    if len(stations) < 2:
        return []
    axis = stacking_axis(stations)
    gaps = []
    for i, j in itertools.pairwise(station_order(stations, axis)):
        _, hi_i = extent_along(stations[i], axis)
        lo_j, _ = extent_along(stations[j], axis)
        step = max(step_along(stations[i], axis), step_along(stations[j], axis))
        gaps.append(max(0.0, lo_j - hi_i - step))
    return gaps


def station_seams(stations: Sequence[sitk.Image]) -> np.ndarray:
    """Where consecutive stations meet along the stack: world points (LPS, mm).

    A seam is the middle of the overlap of two neighbours along the stacking axis (the
    middle of the gap between them when they do not overlap): where the blending ramps of
    :mod:`mrcohort.cohort.blending` cross at 0.5. The seam is the plane through that point
    perpendicular to the stacking axis.

    Parameters
    ----------
    stations
        Stations of one channel with their positions (after content placement when their
        headers lack them), any order.

    Returns
    -------
    ndarray, shape (n - 1, 3)
        One point per pair of neighbours, lowest first, on the line through the mean of
        the station centres along the stacking axis.
    """
    if len(stations) < 2:
        return np.zeros((0, 3))
    axis = stacking_axis(stations)
    middle = np.mean([centre(s) for s in stations], axis=0)
    points = []
    for i, j in itertools.pairwise(station_order(stations, axis)):
        _, hi_i = extent_along(stations[i], axis)
        lo_j, _ = extent_along(stations[j], axis)
        t = 0.5 * (hi_i + lo_j)
        points.append(middle + (t - float(middle @ axis)) * axis)
    return np.array(points)


def check_gaps(stations: Sequence[sitk.Image], label: str = "") -> None:
    """Raise ``STATION_GAP`` when a gap along the stack exceeds half a slice step.

    Raises
    ------
    StitchError
        ``STATION_GAP`` (a station missing in the middle of the stack).
    """
    gaps = station_gaps(stations)
    axis = stacking_axis(stations)
    tol = 0.5 * min(step_along(s, axis) for s in stations)
    bad = [(i, g) for i, g in enumerate(gaps) if g > tol]
    if bad:
        where = ", ".join(f"{g:.1f} mm after station {i + 1}" for i, g in bad)
        raise StitchError(
            "STATION_GAP",
            f"{label}stations do not cover a continuous range: gap of {where} (a station missing?)",
        )
