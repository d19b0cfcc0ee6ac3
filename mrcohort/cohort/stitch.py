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

Stations whose headers carry no position (all at the same place) are ordered and
overlapped from their content with ``positions="content"`` (or ``"auto"``), see
:mod:`mrcohort.cohort.placement`.

A missing station: the stations that are there are stitched when they still cover one
continuous range (a missing first or last station); a gap along the stack (a missing
middle station) is ``STATION_GAP`` unless ``allow_gaps=True``, which fills it with 0.

Error codes (:class:`~mrcohort.errors.StitchError`): ``NO_STATIONS``, ``GRID_MISMATCH``
(stations of the same index differ in in-plane grid between channels),
``STATION_MISMATCH`` (channels with different numbers of stations), ``STATION_GAP``
(stations leave a gap along the stack), ``GRID_TOO_LARGE`` (the grid covering all stations
would exceed ``max_voxels``; checked before allocating), ``NO_POSITIONS`` (all stations at
one position with ``positions="header"``).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from mrcohort.cohort.channels import CHANNELS
from mrcohort.cohort.placement import (
    ContentPlacement,
    apply_placement,
    estimate_placement,
    lacks_positions,
)
from mrcohort.errors import StitchError

__all__ = [
    "DEFAULT_MAX_VOXELS",
    "check_channels",
    "maximum_merge",
    "overlap_widths",
    "ramp_weights",
    "stacking_axis",
    "station_gaps",
    "stitch",
    "stitch_channels",
    "union_grid",
]

#: Largest stitched grid accepted (voxels; 2**28 float32 = 1 GiB per channel).
DEFAULT_MAX_VOXELS = 2**28
#: A station is "on the grid" when its origin is this close to a grid point (voxels).
_ALIGN_TOL_VOX = 1e-3

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
    max_voxels: int | None = DEFAULT_MAX_VOXELS,
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
    max_voxels
        Raise ``GRID_TOO_LARGE`` for a larger grid, before anything is allocated.

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
    _check_grid_size(tuple(int(n) for n in size), max_voxels)
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


def _coverage_parallel(img: sitk.Image, reference: sitk.Image) -> np.ndarray | None:
    """:func:`_coverage` without resampling when both grids share one direction.

    Then coverage is separable: a grid point is covered when its continuous index in the
    station lies in ``[-0.5, size - 0.5)`` along every axis (ITK's linear interpolator
    inside-buffer test). ``None`` when the directions differ.
    """
    d = _direction(img)
    if not np.allclose(d, _direction(reference), atol=1e-9):
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
    a = _direction(ref)[:, ax]
    half_voxel = 0.5 * float(np.abs(a @ _direction(img)) @ np.asarray(img.GetSpacing()))
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


def _check_grid_size(size: Sequence[int], max_voxels: int | None) -> None:
    n = int(np.prod([int(v) for v in size], dtype=np.float64))
    if max_voxels is not None and n > max_voxels:
        raise StitchError(
            "GRID_TOO_LARGE",
            f"the grid covering all stations would be {' x '.join(map(str, size))} "
            f"= {n} voxels (limit {max_voxels}); are the station positions right?",
        )


@dataclass
class _Weights:
    """One station's place on the grid and blending weights (shared by all channels)."""

    block: tuple[slice, slice, slice]  # array (z, y, x) region of the grid
    sub: sitk.Image  # the grid restricted to that region (for resampling)
    weight: np.ndarray  # float32, shape of the block
    aligned: bool  # the station's voxels are grid points: copy instead of resampling


def _station_weights(stations: Sequence[sitk.Image], ref: sitk.Image) -> list[_Weights | None]:
    """Ramp x coverage weights of every station on the grid (``None``: misses the grid)."""
    d = _direction(ref)
    axis = stacking_axis(stations)
    ax = int(np.argmax(np.abs(d.T @ axis)))  # index axis of the reference along the stack
    a = d[:, ax]
    t = float(np.asarray(ref.GetOrigin()) @ a) + ref.GetSpacing()[ax] * np.arange(ref.GetSize()[ax])
    proj = [_corners(s) @ a for s in stations]
    intervals = np.array([[p.min(), p.max()] for p in proj])
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
        sub = ref[tuple(region)]  # only the part of the grid this station can reach
        k = region[ax]
        shape = [1, 1, 1]
        shape[2 - ax] = k.stop - k.start  # array order (z, y, x)
        ramp = np.maximum(ramp_weights(t[k], interval, width), _MIN_WEIGHT)
        ramp = ramp.astype(np.float32).reshape(shape)
        if offset is not None:
            weight = np.broadcast_to(ramp, tuple(reversed(img.GetSize()))).copy()
        else:
            cover = _coverage_parallel(img, sub)
            weight = (_coverage(img, sub) if cover is None else cover) * ramp
        out.append(_Weights(tuple(reversed(region)), sub, weight, offset is not None))  # type: ignore[arg-type]
    return out


def _geometry_key(img: sitk.Image) -> tuple[object, ...]:
    """Hashable grid of an image (size, spacing, origin, direction; rounded)."""
    return (
        img.GetSize(),
        tuple(round(v, 6) for v in img.GetSpacing()),
        tuple(round(v, 4) for v in img.GetOrigin()),
        tuple(round(v, 7) for v in img.GetDirection()),
    )


def _blend(channels: Mapping[str, Sequence[sitk.Image]], ref: sitk.Image) -> dict[str, sitk.Image]:
    """Weighted mean of each channel's stations on ``ref``.

    Channels whose stations have identical grids (the usual Dixon case) share one set of
    weights and one weight sum, computed once.
    """
    grid_shape = tuple(reversed(ref.GetSize()))  # (z, y, x)
    cache: dict[tuple[object, ...], tuple[list[_Weights | None], np.ndarray]] = {}
    out: dict[str, sitk.Image] = {}
    for name, stations in channels.items():
        key = tuple(_geometry_key(s) for s in stations)
        if key not in cache:
            weights = _station_weights(stations, ref)
            den = np.zeros(grid_shape, dtype=np.float32)
            for w in weights:
                if w is not None:
                    den[w.block] += w.weight
            cache[key] = (weights, den)
        weights, den = cache[key]
        num = np.zeros(grid_shape, dtype=np.float32)
        for img, w in zip(stations, weights, strict=True):
            if w is None:
                continue
            values = sitk.GetArrayViewFromImage(img) if w.aligned else _resample(img, w.sub)
            num[w.block] += w.weight * values
        covered = den > 0
        np.divide(num, den, out=num, where=covered)
        num[~covered] = 0.0
        img_out = sitk.GetImageFromArray(num)
        img_out.CopyInformation(ref)
        out[name] = img_out
    return out


# --------------------------------------------------------------------------- checks


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
    order = _order(stations, axis)
    gaps = []
    for i, j in itertools.pairwise(order):
        _, hi_i = _extent(stations[i], axis)
        lo_j, _ = _extent(stations[j], axis)
        step = max(_step(stations[i], axis), _step(stations[j], axis))
        gaps.append(max(0.0, lo_j - hi_i - step))
    return gaps


def _extent(img: sitk.Image, axis: np.ndarray) -> tuple[float, float]:
    p = _corners(img) @ axis
    return float(p.min()), float(p.max())


def _step(img: sitk.Image, axis: np.ndarray) -> float:
    """Voxel step of an image along a world axis (its largest contribution)."""
    return float(np.max(np.abs(axis @ _direction(img)) * np.asarray(img.GetSpacing())))


def _check_gaps(stations: Sequence[sitk.Image], label: str = "") -> None:
    gaps = station_gaps(stations)
    axis = stacking_axis(stations)
    tol = 0.5 * min(_step(s, axis) for s in stations)
    bad = [(i, g) for i, g in enumerate(gaps) if g > tol]
    if bad:
        where = ", ".join(f"{g:.1f} mm after station {i + 1}" for i, g in bad)
        raise StitchError(
            "STATION_GAP",
            f"{label}stations do not cover a continuous range: gap of {where} (a station missing?)",
        )


def _place(
    channels: Mapping[str, Sequence[sitk.Image]], positions: str
) -> tuple[dict[str, list[sitk.Image]], ContentPlacement | None]:
    """Apply content placement to every channel when asked (or when headers lack it)."""
    if positions not in ("header", "content", "auto"):
        raise ValueError(f"positions must be 'header', 'content' or 'auto', got {positions!r}")
    names = list(channels)
    first = list(channels[names[0]])
    missing = lacks_positions(first)
    if positions == "header" and missing:
        raise StitchError(
            "NO_POSITIONS",
            f"all {len(first)} stations sit at the same position in their headers; "
            "place them from their content (positions='content')",
        )
    if positions == "header" or (positions == "auto" and not missing):
        return {c: list(channels[c]) for c in names}, None
    placement = estimate_placement(first)
    return {c: apply_placement(list(channels[c]), placement) for c in names}, placement


# --------------------------------------------------------------------------- stitching


def stitch(
    stations: Sequence[sitk.Image],
    *,
    reference: sitk.Image | None = None,
    spacing: Sequence[float] | None = None,
    positions: str = "header",
    allow_gaps: bool = False,
    max_voxels: int | None = DEFAULT_MAX_VOXELS,
) -> sitk.Image:
    """Resample stations onto one grid and blend overlaps with linear ramps.

    Parameters
    ----------
    stations
        Station images of one channel, any order and orientation, in one frame of
        reference (LPS, mm).
    reference
        Grid to resample onto; default :func:`union_grid` of ``stations``.
    spacing : (sx, sy, sz), mm, optional
        Spacing of the default grid (ignored with ``reference``).
    positions
        ``header``: trust the image positions; ``content``: order and overlap the stations
        from their content (:mod:`mrcohort.cohort.placement`); ``auto``: content when all
        stations sit at the same position in their headers.
    allow_gaps
        Stitch even when stations leave a gap along the stack (filled with 0); default
        ``STATION_GAP``.
    max_voxels
        Refuse (``GRID_TOO_LARGE``) a grid larger than this, before allocating it.

    Returns
    -------
    sitk.Image
        float32 on the reference grid; 0 where no station has data.

    Notes
    -----
    Weights are ``coverage x ramp`` (:func:`ramp_weights` along the stacking axis, with the
    overlap widths of :func:`overlap_widths`), floored at 1e-6 inside a station so that
    an edge slice no other station covers keeps its own value. Only the slab of the grid a
    station can reach is resampled; a station whose voxels are grid points is copied.
    """
    if not stations:
        raise StitchError("NO_STATIONS", "no stations to stitch")
    placed, _ = _place({"image": stations}, positions)
    images = placed["image"]
    if not allow_gaps:
        _check_gaps(images)
    ref = (
        reference
        if reference is not None
        else union_grid(images, spacing=spacing, max_voxels=max_voxels)
    )
    _check_grid_size(ref.GetSize(), max_voxels)
    return _blend({"image": images}, ref)["image"]


def maximum_merge(
    stations: Sequence[sitk.Image], *, reference: sitk.Image | None = None
) -> sitk.Image:
    """Voxel-wise maximum of the resampled stations (the seed's merge; a baseline only).

    Each station is resampled (linear, 0 outside) onto the grid and the largest value
    wins. Not used by the pipeline: it biases the overlaps upwards (the maximum of two
    noisy samples) and leaves a visible seam; kept to compare against in ``benchmarks/``.
    """
    if not stations:
        raise StitchError("NO_STATIONS", "no stations to stitch")
    ref = reference if reference is not None else union_grid(stations)
    out = np.zeros(tuple(reversed(ref.GetSize())), dtype=np.float32)
    for img in stations:
        np.maximum(out, _resample(img, ref), out=out)
    result = sitk.GetImageFromArray(out)
    result.CopyInformation(ref)
    return result


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


def check_channels(
    stations: Mapping[str, Sequence[sitk.Image]],
    *,
    tolerance_mm: float = 0.01,
    allow_gaps: bool = False,
) -> dict[str, list[sitk.Image]]:
    """Check that channels can share one grid; return their stations ordered along the stack.

    Cheap (geometry only, no resampling): ingest runs it to fail early.

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
                    "GRID_MISMATCH", f"station {i + 1}: channel {c!r} vs {first!r}: {why}"
                )
    if not allow_gaps:
        _check_gaps(ordered[first], label=f"channel {first!r}: ")
    return ordered


def stitch_channels(
    stations: Mapping[str, Sequence[sitk.Image]],
    *,
    spacing: Sequence[float] | None = None,
    reference: sitk.Image | None = None,
    tolerance_mm: float = 0.01,
    positions: str = "header",
    allow_gaps: bool = False,
    max_voxels: int | None = DEFAULT_MAX_VOXELS,
) -> dict[str, sitk.Image]:
    """Stitch every channel onto ONE grid shared by all channels.

    Parameters
    ----------
    stations
        Channel -> station images (any order within a channel).
    spacing : (sx, sy, sz), mm, optional
        Grid spacing in SimpleITK order; default: the lowest station's own spacing (its
        native in-plane spacing and slice spacing).
    reference
        Put the result on this grid instead (e.g. an earlier stitched image).
    tolerance_mm
        How far the in-plane grids of stations of the same index may differ between
        channels (spacing and field-of-view edges).
    positions
        ``header``, ``content`` or ``auto`` (see :func:`stitch`); content placement is
        estimated on the first channel and applied to all.
    allow_gaps
        Stitch even when stations leave a gap along the stack (filled with 0).
    max_voxels
        Refuse (``GRID_TOO_LARGE``) a larger grid, before allocating it.

    Returns
    -------
    dict
        Channel -> float32 stitched image; all share size, spacing, origin and direction.
        Channels come in canonical order (``in``, ``opp``, ``w``, ``f``), others after.

    Raises
    ------
    StitchError
        ``NO_STATIONS``, ``STATION_MISMATCH``, ``GRID_MISMATCH``, ``STATION_GAP``,
        ``GRID_TOO_LARGE``.
    """
    if not stations or any(len(v) == 0 for v in stations.values()):
        raise StitchError("NO_STATIONS", "every channel needs at least one station")
    counts = {c: len(v) for c, v in stations.items()}
    if len(set(counts.values())) > 1:
        raise StitchError("STATION_MISMATCH", f"stations per channel differ: {counts}")
    placed, _ = _place(stations, positions)
    ordered = check_channels(placed, tolerance_mm=tolerance_mm, allow_gaps=allow_gaps)
    everything = [img for v in ordered.values() for img in v]
    grid = (
        reference
        if reference is not None
        else union_grid(everything, spacing=spacing, max_voxels=max_voxels)
    )
    _check_grid_size(grid.GetSize(), max_voxels)
    return _blend(ordered, grid)
