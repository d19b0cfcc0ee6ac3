"""Stitch the stations of a whole-body acquisition onto one grid (SimpleITK, no file I/O).

Every station is resampled onto a grid that covers the union of all stations and blended in
the overlaps with linear ramps (:mod:`mrcohort.cohort.blending`). The stacking axis is found
from the station centres (:mod:`mrcohort.cohort.geometry`), so stations in any orientation
(LPS, RAS, PIL, ...) stitch the same way. All Dixon channels of a participant are put on ONE
grid by :func:`stitch_channels` (after :func:`~mrcohort.cohort.channels.check_channels`), so
fat and water stay voxel-aligned.

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

from collections.abc import Mapping, Sequence

import numpy as np
import SimpleITK as sitk

from mrcohort.cohort.blending import blend
from mrcohort.cohort.channels import check_channels, check_station_counts
from mrcohort.cohort.geometry import check_gaps, corners, direction, station_order
from mrcohort.cohort.placement import (
    ContentPlacement,
    apply_placement,
    estimate_placement,
    lacks_positions,
)
from mrcohort.errors import StitchError

__all__ = ["DEFAULT_MAX_VOXELS", "place_stations", "stitch", "stitch_channels", "union_grid"]

#: Largest stitched grid accepted (voxels; 2**28 float32 = 1 GiB per channel).
DEFAULT_MAX_VOXELS = 2**28
#: Slack when counting grid points along an axis (fraction of a voxel).
_GRID_EPS = 1e-6


# --------------------------------------------------------------------------- grid


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
    first = stations[station_order(stations)[0]]
    d = direction(first)
    sp = np.asarray(_check_spacing(spacing if spacing is not None else first.GetSpacing()))
    coords = np.concatenate([corners(s) for s in stations]) @ d  # frame coordinates
    lo, hi = coords.min(axis=0), coords.max(axis=0)
    size = np.ceil((hi - lo) / sp - _GRID_EPS).astype(int) + 1
    _check_grid_size(tuple(int(n) for n in size), max_voxels)
    ref = sitk.Image([int(n) for n in size], sitk.sitkUInt8)
    ref.SetDirection(tuple(float(v) for v in d.ravel()))
    ref.SetSpacing(tuple(float(v) for v in sp))
    ref.SetOrigin(tuple(float(v) for v in d @ lo))
    return ref


def _check_grid_size(size: Sequence[int], max_voxels: int | None) -> None:
    n = int(np.prod([int(v) for v in size], dtype=np.float64))
    if max_voxels is not None and n > max_voxels:
        raise StitchError(
            "GRID_TOO_LARGE",
            f"the grid covering all stations would be {' x '.join(map(str, size))} "
            f"= {n} voxels (limit {max_voxels}); are the station positions right?",
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


def place_stations(
    stations: Mapping[str, Sequence[sitk.Image]], *, positions: str = "auto"
) -> dict[str, list[sitk.Image]]:
    """Every channel's stations with the positions :func:`stitch_channels` stitches them at.

    What ``stitch_channels(stations, positions=...)`` does first; call it separately when
    the placed stations are needed too (e.g. for
    :func:`~mrcohort.cohort.geometry.station_seams`), then stitch the result.

    Parameters
    ----------
    stations
        Channel -> station images (any order within a channel).
    positions
        ``header``: as they are; ``content``: ordered and overlapped from their content,
        estimated on the first channel and applied to all; ``auto``: content when all
        stations sit at the same position in their headers.

    Raises
    ------
    StitchError
        ``STATION_MISMATCH``, ``NO_POSITIONS`` (``header`` and no positions),
        ``GRID_MISMATCH`` (content placement of stations on different grids).
    """
    check_station_counts(stations)  # before placement, which treats all channels alike
    return _place(stations, positions)[0]


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
        check_gaps(images)
    ref = (
        reference
        if reference is not None
        else union_grid(images, spacing=spacing, max_voxels=max_voxels)
    )
    _check_grid_size(ref.GetSize(), max_voxels)
    return blend({"image": images}, ref)["image"]


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
    check_station_counts(stations)  # before placement, which treats all channels alike
    placed, _ = _place(stations, positions)
    ordered = check_channels(placed, tolerance_mm=tolerance_mm, allow_gaps=allow_gaps)
    everything = [img for v in ordered.values() for img in v]
    grid = (
        reference
        if reference is not None
        else union_grid(everything, spacing=spacing, max_voxels=max_voxels)
    )
    _check_grid_size(grid.GetSize(), max_voxels)
    return blend(ordered, grid)
