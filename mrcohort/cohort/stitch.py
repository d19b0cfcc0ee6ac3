"""Stitch the stations of a whole-body acquisition onto one grid (SimpleITK, no file I/O).

Every station is resampled (linear interpolation, 0 outside) onto a grid that covers the
union of all stations. In an overlap the stations are blended with linear ramps along the
stacking axis: each station's weight falls linearly from 1 to 0 across the overlap towards
its own edge, and the weighted sum is divided by the sum of the weights. Two stations
overlapping by ``W`` mm therefore get weights ``x / W`` and ``1 - x / W``, which sum to one,
so the image is continuous across the seam and noise in the overlap is averaged rather than
picked (a voxel-wise maximum, as AIAH_utility does, biases and roughens the seam).

The stacking axis is found from the station centres (their principal direction in world
space), so stations in any orientation (LPS, RAS, PIL, ...) stitch the same way. All
Dixon channels of a participant are put on ONE grid by :func:`stitch_channels`, so fat and
water stay voxel-aligned.

Error codes (:class:`~mrcohort.errors.StitchError`): ``NO_STATIONS``, ``GRID_MISMATCH``
(stations of the same index differ in in-plane grid between channels),
``STATION_MISMATCH`` (channels with different numbers of stations).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import SimpleITK as sitk

from mrcohort.cohort.channels import CHANNELS
from mrcohort.errors import StitchError

__all__ = [
    "overlap_widths",
    "ramp_weights",
    "stacking_axis",
    "stitch",
    "stitch_channels",
    "union_grid",
]

#: Two axes are parallel when the |cosine| between them exceeds 1 - this.
_PARALLEL_TOL = 1e-4
#: Floor of the ramp weight, so that every voxel a station covers has a positive weight
#: sum (an edge slice that no neighbour covers keeps its value); negligible elsewhere.
_MIN_WEIGHT = 1e-6
#: Slack when counting grid points along an axis (fraction of a voxel).
_GRID_EPS = 1e-6


# --------------------------------------------------------------------------- geometry


def _direction(img: sitk.Image) -> np.ndarray:
    """Direction matrix, shape (3, 3); column k is the world direction of index axis k."""
    return np.asarray(img.GetDirection(), dtype=float).reshape(3, 3)


def _corners(img: sitk.Image) -> np.ndarray:
    """World (LPS, mm) positions of the 8 corners of the voxel-centre box, shape (8, 3)."""
    hi = np.asarray(img.GetSize(), dtype=float) - 1
    ijk = np.array([[i, j, k] for i in (0, hi[0]) for j in (0, hi[1]) for k in (0, hi[2])])
    step = _direction(img) * np.asarray(img.GetSpacing(), dtype=float)  # columns scaled
    return np.asarray(img.GetOrigin(), dtype=float) + ijk @ step.T


def _centre(img: sitk.Image) -> np.ndarray:
    """World position of the centre of the voxel-centre box, shape (3,)."""
    return _corners(img).mean(axis=0)


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
    centres = np.stack([_centre(s) for s in stations])
    spread = centres - centres.mean(axis=0)
    if len(stations) > 1 and np.linalg.norm(spread) > 1e-6:
        axis = np.linalg.svd(spread, full_matrices=False)[2][0]
    else:
        axis = _direction(stations[0])[:, 2]
    axis = axis / np.linalg.norm(axis)
    return axis if axis[np.argmax(np.abs(axis))] > 0 else -axis


def _order(stations: Sequence[sitk.Image], axis: np.ndarray) -> list[int]:
    """Indices of the stations sorted along ``axis`` (stable for ties)."""
    keys = [float(_centre(s) @ axis) for s in stations]
    return sorted(range(len(stations)), key=lambda i: keys[i])


def _check_spacing(spacing: Sequence[float]) -> tuple[float, float, float]:
    """Validate a 3-vector of positive spacings."""
    if len(spacing) != 3 or not all(np.isfinite(v) and v > 0 for v in spacing):
        raise ValueError(f"spacing must be three positive numbers (x, y, z), got {spacing}")
    sx, sy, sz = (float(v) for v in spacing)
    return sx, sy, sz


def union_grid(
    stations: Sequence[sitk.Image],
    *,
    spacing: Sequence[float] | None = None,
) -> sitk.Image:
    """Empty reference image (uint8, zeros) whose grid covers every station.

    Parameters
    ----------
    stations
        Station images, any order and orientation.
    spacing : (sx, sy, sz), mm, optional
        Grid spacing in SimpleITK order (x, y, z) along the reference's own axes. Default:
        the spacing of the first station — the lowest along the stacking axis, so the
        result does not depend on the order of ``stations``.

    Returns
    -------
    sitk.Image
        Direction of that first station; origin and size such that the voxel centres of
        the grid span the bounding box of all stations' voxel centres (expressed in the
        reference frame), starting at its low corner.
    """
    if not stations:
        raise StitchError("NO_STATIONS", "no stations to put on a grid")
    first = stations[_order(stations, stacking_axis(stations))[0]]
    d = _direction(first)
    sp = np.asarray(_check_spacing(spacing if spacing is not None else first.GetSpacing()))
    coords = np.concatenate([_corners(s) for s in stations]) @ d  # frame coordinates
    lo, hi = coords.min(axis=0), coords.max(axis=0)
    size = np.ceil((hi - lo) / sp - _GRID_EPS).astype(int) + 1
    ref = sitk.Image([int(n) for n in size], sitk.sitkUInt8)
    ref.SetDirection(tuple(float(v) for v in d.ravel()))
    ref.SetSpacing(tuple(float(v) for v in sp))
    ref.SetOrigin(tuple(float(v) for v in d @ lo))
    return ref


# --------------------------------------------------------------------------- blending


def overlap_widths(intervals: np.ndarray) -> np.ndarray:
    """Overlap of each station with its neighbours below and above, along the stack.

    Parameters
    ----------
    intervals : ndarray, shape (n, 2)
        ``[t_min, t_max]`` of each station's voxel centres along the stacking axis (mm).

    Returns
    -------
    ndarray, shape (n, 2)
        ``[w_low, w_high]`` (mm): how far the overlap with a station lower (higher) on the
        axis reaches into this one from its low (high) edge; 0 where nothing overlaps.
    """
    lo, hi = intervals[:, 0], intervals[:, 1]
    mid = intervals.mean(axis=1)
    widths = np.zeros_like(intervals, dtype=float)
    for i in range(len(intervals)):
        for j in range(len(intervals)):
            if i == j:
                continue
            if mid[j] < mid[i] and hi[j] > lo[i]:
                widths[i, 0] = max(widths[i, 0], min(hi[j], hi[i]) - lo[i])
            elif mid[j] > mid[i] and lo[j] < hi[i]:
                widths[i, 1] = max(widths[i, 1], hi[i] - max(lo[j], lo[i]))
            # equal centres: no ramp; the normalised sum averages them
    return widths


def ramp_weights(
    t_mm: np.ndarray, interval: Sequence[float], widths: Sequence[float]
) -> np.ndarray:
    """Linear-ramp weight of one station at positions along the stacking axis.

    Parameters
    ----------
    t_mm : ndarray, shape (m,)
        Positions along the stacking axis (mm).
    interval : (t_min, t_max)
        The station's voxel-centre extent along the axis (mm).
    widths : (w_low, w_high)
        Overlap widths at its low and high edge (mm), from :func:`overlap_widths`.

    Returns
    -------
    ndarray, shape (m,)
        In [0, 1]: 0 at an overlapped edge, rising linearly to 1 across the overlap; 1
        at an edge without overlap and inside the station.
    """
    w = np.ones_like(t_mm, dtype=float)
    if widths[0] > _GRID_EPS:
        w = np.minimum(w, np.clip((t_mm - interval[0]) / widths[0], 0.0, 1.0))
    if widths[1] > _GRID_EPS:
        w = np.minimum(w, np.clip((interval[1] - t_mm) / widths[1], 0.0, 1.0))
    return w


def _resample(img: sitk.Image, reference: sitk.Image) -> np.ndarray:
    """Linear resampling onto the reference grid, 0 outside; float32 array (z, y, x)."""
    out = sitk.Resample(img, reference, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)
    return sitk.GetArrayFromImage(out)


def _coverage(img: sitk.Image, reference: sitk.Image) -> np.ndarray:
    """1 where the resampled station has data, 0 where it is outside; float32 (z, y, x)."""
    ones = sitk.Image(img.GetSize(), sitk.sitkUInt8) + 1
    ones.CopyInformation(img)
    return _resample(ones, reference)


def _slab(img: sitk.Image, ref: sitk.Image, ax: int, interval: np.ndarray) -> tuple[int, int]:
    """Index range ``[k0, k1)`` along reference axis ``ax`` that a station can cover.

    The station's voxel-centre extent along the axis, widened by half a station voxel
    (linear interpolation reaches that far) and one reference voxel, clipped to the grid.
    """
    a = _direction(ref)[:, ax]
    half_voxel = 0.5 * float(np.abs(a @ _direction(img)) @ np.asarray(img.GetSpacing()))
    t0 = float(np.asarray(ref.GetOrigin()) @ a)
    step = ref.GetSpacing()[ax]
    k0 = int(np.floor((interval[0] - half_voxel - t0) / step)) - 1
    k1 = int(np.ceil((interval[1] + half_voxel - t0) / step)) + 2
    return max(k0, 0), min(k1, ref.GetSize()[ax])


def stitch(
    stations: Sequence[sitk.Image],
    *,
    reference: sitk.Image | None = None,
) -> sitk.Image:
    """Resample stations onto one grid and blend overlaps with linear ramps.

    Parameters
    ----------
    stations
        Station images of one channel, any order and orientation, in one frame of
        reference (LPS, mm).
    reference
        Grid to resample onto; default :func:`union_grid` of ``stations``.

    Returns
    -------
    sitk.Image
        float32 on the reference grid; 0 where no station has data.

    Notes
    -----
    Weights are ``coverage x ramp`` (:func:`ramp_weights` along the stacking axis, with the
    overlap widths of :func:`overlap_widths`), floored at 1e-6 inside a station so that
    an edge slice no other station covers keeps its own value. Only the slab of the grid a
    station can reach is resampled.
    """
    if not stations:
        raise StitchError("NO_STATIONS", "no stations to stitch")
    ref = reference if reference is not None else union_grid(stations)
    d = _direction(ref)
    axis = stacking_axis(stations)
    ax = int(np.argmax(np.abs(d.T @ axis)))  # index axis of the reference along the stack
    a = d[:, ax]
    n_ax = ref.GetSize()[ax]
    t = float(np.asarray(ref.GetOrigin()) @ a) + ref.GetSpacing()[ax] * np.arange(n_ax)

    proj = [_corners(s) @ a for s in stations]
    intervals = np.array([[p.min(), p.max()] for p in proj])
    widths = overlap_widths(intervals)

    grid_shape = tuple(reversed(ref.GetSize()))  # (z, y, x)
    num = np.zeros(grid_shape, dtype=np.float32)
    den = np.zeros(grid_shape, dtype=np.float32)
    for img, interval, width in zip(stations, intervals, widths, strict=True):
        k0, k1 = _slab(img, ref, ax, interval)
        if k1 <= k0:
            continue
        region: list[slice] = [slice(None)] * 3
        region[ax] = slice(k0, k1)
        sub = ref[tuple(region)]  # only the part of the grid this station can reach
        shape = [1, 1, 1]
        shape[2 - ax] = k1 - k0  # array order (z, y, x)
        ramp = np.maximum(ramp_weights(t[k0:k1], interval, width), _MIN_WEIGHT)
        weight = _coverage(img, sub)
        weight *= ramp.astype(np.float32).reshape(shape)
        block = tuple(reversed(region))
        den[block] += weight
        weight *= _resample(img, sub)
        num[block] += weight
    blended = np.zeros(grid_shape, dtype=np.float32)
    np.divide(num, den, out=blended, where=den > 0)
    out = sitk.GetImageFromArray(blended)
    out.CopyInformation(ref)
    return out


# --------------------------------------------------------------------------- channels


def _inplane_mismatch(
    a: sitk.Image, b: sitk.Image, axis: np.ndarray, *, tolerance_mm: float
) -> str:
    """Why two stations' in-plane grids differ; ``""`` when they match.

    Axes may be permuted or flipped between the two (e.g. LPS vs RAS); compared are the
    axis directions, spacing, size and extent of every axis except the stacking one.
    """
    da, db = _direction(a), _direction(b)
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
        pa, pb = _corners(a) @ da[:, k], _corners(b) @ da[:, k]
        shift = max(abs(pa.min() - pb.min()), abs(pa.max() - pb.max()))
        if shift > tolerance_mm:
            return f"field of view shifted by {shift:.3f} mm"
    return ""


def stitch_channels(
    stations: Mapping[str, Sequence[sitk.Image]],
    *,
    spacing: Sequence[float] | None = None,
    tolerance_mm: float = 0.01,
) -> dict[str, sitk.Image]:
    """Stitch every channel onto ONE grid shared by all channels.

    Parameters
    ----------
    stations
        Channel -> station images (any order within a channel).
    spacing : (sx, sy, sz), mm, optional
        Grid spacing in SimpleITK order; default: the lowest station's own spacing.
    tolerance_mm
        How far the in-plane grids of stations of the same index may differ between
        channels (spacing and field-of-view edges).

    Returns
    -------
    dict
        Channel -> float32 stitched image; all share size, spacing, origin and direction.
        Channels come in canonical order (``in``, ``opp``, ``w``, ``f``), others after.

    Raises
    ------
    StitchError
        ``NO_STATIONS``, ``STATION_MISMATCH``, ``GRID_MISMATCH``.
    """
    names = [c for c in CHANNELS if c in stations] + sorted(
        c for c in stations if c not in CHANNELS
    )
    if not names or any(len(stations[c]) == 0 for c in names):
        raise StitchError("NO_STATIONS", "every channel needs at least one station")
    everything = [img for c in names for img in stations[c]]
    axis = stacking_axis(everything)
    ordered = {c: [stations[c][i] for i in _order(stations[c], axis)] for c in names}
    counts = {c: len(v) for c, v in ordered.items()}
    if len(set(counts.values())) > 1:
        raise StitchError("STATION_MISMATCH", f"stations per channel differ: {counts}")
    first = names[0]
    for c in names[1:]:
        for i, (a, b) in enumerate(zip(ordered[first], ordered[c], strict=True)):
            why = _inplane_mismatch(a, b, axis, tolerance_mm=tolerance_mm)
            if why:
                raise StitchError(
                    "GRID_MISMATCH", f"station {i}: channel {c!r} vs {first!r}: {why}"
                )
    grid = union_grid(everything, spacing=spacing)
    return {c: stitch(ordered[c], reference=grid) for c in names}
