"""Blending stations on one grid: linear-ramp weights in the overlaps, weighted mean.

Every station is resampled (linear interpolation, 0 outside) onto the grid. In an overlap
the stations are blended with linear ramps along the stacking axis: each station's weight
falls linearly from 1 to 0 across the overlap towards its own edge, and the weighted sum is
divided by the sum of the weights. Two stations overlapping by ``W`` mm therefore get
weights ``x / W`` and ``1 - x / W``, which sum to one, so the image is continuous across the
seam and noise in the overlap is averaged rather than picked (a voxel-wise maximum, as
AIAH_utility does, biases and roughens the seam).

Only the slab of the grid a station can reach is resampled; a station whose voxels are grid
points is copied. The stitching API is :mod:`mrcohort.cohort.stitch`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from mrcohort.cohort.geometry import direction, extent_along, stacking_axis

__all__ = ["blend", "overlap_widths", "ramp_weights"]

#: A station is "on the grid" when its origin is this close to a grid point (voxels).
_ALIGN_TOL_VOX = 1e-3
#: Floor of the ramp weight, so that every voxel a station covers has a positive weight
#: sum (an edge slice that no neighbour covers keeps its value); negligible elsewhere.
_MIN_WEIGHT = 1e-6
#: Overlaps narrower than this (mm) get no ramp.
_MIN_OVERLAP_MM = 1e-6


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
    if widths[0] > _MIN_OVERLAP_MM:
        w = np.minimum(w, np.clip((t_mm - interval[0]) / widths[0], 0.0, 1.0))
    if widths[1] > _MIN_OVERLAP_MM:
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


def _coverage_parallel(img: sitk.Image, reference: sitk.Image) -> np.ndarray | None:
    """:func:`_coverage` without resampling when both grids share one direction.

    Then coverage is separable: a grid point is covered when its continuous index in the
    station lies in ``[-0.5, size - 0.5)`` along every axis (ITK's linear interpolator
    inside-buffer test). ``None`` when the directions differ.
    """
    d = direction(img)
    if not np.allclose(d, direction(reference), atol=1e-9):
        return None
    offset = d.T @ (np.asarray(reference.GetOrigin()) - np.asarray(img.GetOrigin()))
    masks = []
    for a in range(3):
        t = offset[a] + np.arange(reference.GetSize()[a]) * reference.GetSpacing()[a]
        c = t / img.GetSpacing()[a]
        masks.append(((c >= -0.5) & (c < img.GetSize()[a] - 0.5)).astype(np.float32))
    return masks[2][:, None, None] * masks[1][None, :, None] * masks[0][None, None, :]


def _slab(img: sitk.Image, ref: sitk.Image, ax: int, interval: np.ndarray) -> tuple[int, int]:
    """Index range ``[k0, k1)`` along reference axis ``ax`` that a station can cover.

    The station's voxel-centre extent along the axis, widened by half a station voxel
    (linear interpolation reaches that far) and one reference voxel, clipped to the grid.
    """
    a = direction(ref)[:, ax]
    half_voxel = 0.5 * float(np.abs(a @ direction(img)) @ np.asarray(img.GetSpacing()))
    t0 = float(np.asarray(ref.GetOrigin()) @ a)
    step = ref.GetSpacing()[ax]
    k0 = int(np.floor((interval[0] - half_voxel - t0) / step)) - 1
    k1 = int(np.ceil((interval[1] + half_voxel - t0) / step)) + 2
    return max(k0, 0), min(k1, ref.GetSize()[ax])


def _aligned_offset(img: sitk.Image, ref: sitk.Image) -> tuple[int, int, int] | None:
    """Index of the station's first voxel in ``ref`` when its voxels ARE grid points of ref.

    Same direction and spacing, origin on a grid point (within 1e-3 voxel) and the whole
    station inside the grid. Then resampling is a copy, which is exact and much faster.
    """
    if img.GetSpacing() != ref.GetSpacing() and not np.allclose(
        img.GetSpacing(), ref.GetSpacing(), rtol=1e-7, atol=0
    ):
        return None
    if not np.allclose(img.GetDirection(), ref.GetDirection(), atol=1e-9):
        return None
    index = np.asarray(ref.TransformPhysicalPointToContinuousIndex(img.GetOrigin()))
    rounded = np.rint(index)
    if np.max(np.abs(index - rounded)) > _ALIGN_TOL_VOX:
        return None
    lo = rounded.astype(int)
    if np.any(lo < 0) or np.any(lo + np.asarray(img.GetSize()) > np.asarray(ref.GetSize())):
        return None
    return int(lo[0]), int(lo[1]), int(lo[2])


@dataclass
class _Weights:
    """One station's place on the grid and blending weights (shared by all channels)."""

    block: tuple[slice, slice, slice]  # array (z, y, x) region of the grid
    sub: sitk.Image | None  # the grid restricted to that region (to resample onto); None: aligned
    weight: np.ndarray  # float32, shape of the block (read-only broadcast of ramp when aligned)
    ramp: np.ndarray  # float32 ramp along the stack over the block, 1-D

    @property
    def aligned(self) -> bool:
        """The station's voxels are grid points: its values are copied, not resampled."""
        return self.sub is None


def _station_weights(
    stations: Sequence[sitk.Image], ref: sitk.Image
) -> tuple[list[_Weights | None], int]:
    """Ramp x coverage weights of every station on the grid (``None``: misses the grid), and
    the array axis of the grid along the stack."""
    d = direction(ref)
    axis = stacking_axis(stations)
    ax = int(np.argmax(np.abs(d.T @ axis)))  # index axis of the reference along the stack
    a = d[:, ax]
    t = float(np.asarray(ref.GetOrigin()) @ a) + ref.GetSpacing()[ax] * np.arange(ref.GetSize()[ax])
    intervals = np.array([extent_along(s, a) for s in stations])
    widths = overlap_widths(intervals)
    out: list[_Weights | None] = []
    for img, interval, width in zip(stations, intervals, widths, strict=True):
        offset = _aligned_offset(img, ref)
        if offset is not None:
            region = [slice(o, o + n) for o, n in zip(offset, img.GetSize(), strict=True)]
        else:
            k0, k1 = _slab(img, ref, ax, interval)
            if k1 <= k0:
                out.append(None)
                continue
            region = [slice(0, n) for n in ref.GetSize()]
            region[ax] = slice(k0, k1)
        k = region[ax]
        shape = [1, 1, 1]
        shape[2 - ax] = k.stop - k.start  # array order (z, y, x)
        ramp = np.maximum(ramp_weights(t[k], interval, width), _MIN_WEIGHT).astype(np.float32)
        block = tuple(reversed(region))
        if offset is not None:
            weight = np.broadcast_to(ramp.reshape(shape), tuple(reversed(img.GetSize())))
            out.append(_Weights(block, None, weight, ramp))  # type: ignore[arg-type]
            continue
        sub = ref[tuple(region)]  # only the part of the grid this station can reach
        cover = _coverage_parallel(img, sub)
        weight = (_coverage(img, sub) if cover is None else cover) * ramp.reshape(shape)
        out.append(_Weights(block, sub, weight, ramp))  # type: ignore[arg-type]
    return out, 2 - ax


@dataclass
class _Plan:
    """How one set of station grids fills the output grid (shared by all channels).

    Along the stack (array ``axis``), a run of grid slices that only one aligned station
    covers, with weight 1, is that station's values (``copies``: station, start, stop); the
    other covered runs (``mixed``: start, stop, weight sum) are weighted means.
    """

    weights: list[_Weights | None]
    axis: int
    copies: list[tuple[int, int, int]]
    mixed: list[tuple[int, int, np.ndarray]]


def _plan(stations: Sequence[sitk.Image], ref: sitk.Image) -> _Plan:
    """Runs of copied and blended slices along the stack, and the weight sums of the latter."""
    weights, axis = _station_weights(stations, ref)
    n = ref.GetSize()[2 - axis]
    owners: list[list[int]] = [[] for _ in range(n)]
    for i, w in enumerate(weights):
        if w is not None:
            for k in range(w.block[axis].start, w.block[axis].stop):
                owners[k].append(i)
    kinds = [_slice_kind(weights, axis, k, who) for k, who in enumerate(owners)]
    copies: list[tuple[int, int, int]] = []
    mixed: list[tuple[int, int, np.ndarray]] = []
    grid_shape = tuple(reversed(ref.GetSize()))
    for kind, start, stop in _runs(kinds):
        if kind >= 0:
            copies.append((kind, start, stop))
        elif kind == _MIXED:
            mixed.append((start, stop, _weight_sum(weights, axis, grid_shape, start, stop)))
    return _Plan(weights, axis, copies, mixed)


_EMPTY, _MIXED = -1, -2


def _slice_kind(weights: list[_Weights | None], axis: int, k: int, owners: list[int]) -> int:
    """The station whose values grid slice ``k`` copies, or ``_EMPTY`` / ``_MIXED``."""
    if not owners:
        return _EMPTY
    if len(owners) == 1:
        w = weights[owners[0]]
        if w is not None and w.aligned and w.ramp[k - w.block[axis].start] == 1.0:
            return owners[0]  # weight 1 alone: the weighted mean is the value itself
    return _MIXED


def _runs(kinds: list[int]) -> list[tuple[int, int, int]]:
    """``(kind, start, stop)`` of the runs of equal kinds."""
    out: list[tuple[int, int, int]] = []
    for k, kind in enumerate(kinds):
        if out and out[-1][0] == kind and out[-1][2] == k:
            out[-1] = (kind, out[-1][1], k + 1)
        else:
            out.append((kind, k, k + 1))
    return out


def _overlap(w: _Weights, axis: int, start: int, stop: int) -> tuple[tuple, tuple] | None:
    """Index of the part of station block ``w`` in grid slices [start, stop) along ``axis``:
    ``(in the slab, in the block)``; None when they do not meet."""
    s0, s1 = w.block[axis].start, w.block[axis].stop
    lo, hi = max(start, s0), min(stop, s1)
    if hi <= lo:
        return None
    in_slab, in_block = list(w.block), [slice(None)] * 3
    in_slab[axis] = slice(lo - start, hi - start)
    in_block[axis] = slice(lo - s0, hi - s0)
    return tuple(in_slab), tuple(in_block)


def _weight_sum(
    weights: list[_Weights | None], axis: int, grid_shape: tuple[int, ...], start: int, stop: int
) -> np.ndarray:
    """Sum of the stations' weights over grid slices [start, stop), in station order."""
    shape = list(grid_shape)
    shape[axis] = stop - start
    den = np.zeros(shape, dtype=np.float32)
    for w in weights:
        where = None if w is None else _overlap(w, axis, start, stop)
        if where is not None:
            den[where[0]] += w.weight[where[1]]  # type: ignore[union-attr]
    return den


def _geometry_key(img: sitk.Image) -> tuple[object, ...]:
    """Hashable grid of an image (size, spacing, origin, direction; rounded)."""
    return (
        img.GetSize(),
        tuple(round(v, 6) for v in img.GetSpacing()),
        tuple(round(v, 4) for v in img.GetOrigin()),
        tuple(round(v, 7) for v in img.GetDirection()),
    )


def blend(channels: Mapping[str, Sequence[sitk.Image]], ref: sitk.Image) -> dict[str, sitk.Image]:
    """Weighted mean of each channel's stations on ``ref``.

    Channels whose stations have identical grids (the usual Dixon case) share one plan and
    one set of weights, computed once. Grid slices only one aligned station covers with
    weight 1 are copied from it; the others are accumulated station by station in float32
    and divided by the weight sum, exactly as a weighted mean over the whole grid would.
    """
    cache: dict[tuple[object, ...], _Plan] = {}
    out: dict[str, sitk.Image] = {}
    for name, stations in channels.items():
        key = tuple(_geometry_key(s) for s in stations)
        if key not in cache:
            cache[key] = _plan(stations, ref)
        img_out = sitk.GetImageFromArray(_blend_channel(stations, cache[key], ref))
        img_out.CopyInformation(ref)
        out[name] = img_out
    return out


def _blend_channel(stations: Sequence[sitk.Image], plan: _Plan, ref: sitk.Image) -> np.ndarray:
    """One channel on the grid (float32, z, y, x): copied runs, then blended runs."""
    shape = tuple(reversed(ref.GetSize()))
    values = _station_values(stations, plan)
    axis = plan.axis
    if not plan.copies and [m[:2] for m in plan.mixed] == [(0, shape[axis])]:
        return _blended_run(values, plan, *plan.mixed[0])  # one weighted mean everywhere
    out = np.zeros(shape, dtype=np.float32)
    for i, start, stop in plan.copies:
        w = plan.weights[i]
        where = None if w is None else _overlap(w, axis, start, stop)
        assert w is not None and where is not None
        target = list(w.block)
        target[axis] = slice(start, stop)
        out[tuple(target)] = values(i)[where[1]]
    for start, stop, den in plan.mixed:
        index = [slice(None)] * 3
        index[axis] = slice(start, stop)
        out[tuple(index)] = _blended_run(values, plan, start, stop, den)
    return out


def _station_values(
    stations: Sequence[sitk.Image], plan: _Plan
) -> Callable[[int], np.ndarray]:
    """Station index -> its values on its block: a view when aligned, else resampled. Not
    kept: a station that is resampled lies in one blended run only (all its slices are
    blended, and they are contiguous), so each is resampled once and freed after use."""

    def values(i: int) -> np.ndarray:
        w = plan.weights[i]
        assert w is not None
        img = stations[i]
        return sitk.GetArrayViewFromImage(img) if w.aligned else _resample(img, w.sub)

    return values


def _blended_run(
    values: Callable[[int], np.ndarray], plan: _Plan, start: int, stop: int, den: np.ndarray
) -> np.ndarray:
    """Weighted mean over grid slices [start, stop): stations accumulated in order (float32),
    divided by the weight sum ``den``; 0 where no station has weight."""
    num = np.zeros(den.shape, dtype=np.float32)
    for i, w in enumerate(plan.weights):
        where = None if w is None else _overlap(w, plan.axis, start, stop)
        if where is not None:
            num[where[0]] += w.weight[where[1]] * values(i)[where[1]]  # type: ignore[union-attr]
    covered = den > 0
    np.divide(num, den, out=num, where=covered)
    num[~covered] = 0.0
    return num
