"""Vessel centrelines: longest skeleton path of a tubular mask and its smoothing spline.

Mask → crop → resample to isotropic voxels (linear interpolation, threshold 0.5) →
skeletonize (scikit-image, Lee 1994) → pixel graph (skan) → longest geodesic between two
skeleton end points (scipy Dijkstra) → smoothing spline (scipy ``splprep``). The raw path
zig-zags on the voxel grid and overestimates the length; the spline is what
`mrcohort.biomarkers.tortuosity` measures.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi
from scipy.interpolate import splev, splprep
from scipy.sparse.csgraph import dijkstra
from skan import Skeleton
from skimage.morphology import skeletonize

from mrcohort.biomarkers._checks import positive, validate_spacing

__all__ = [
    "Centerline",
    "bbox",
    "centerline",
    "centerline_of_crop",
    "polyline_length",
    "smoothing_spline",
]


@dataclass(frozen=True)
class Centerline:
    """A vessel centreline in mm, array order (z, y, x), from one end to the other.

    Attributes
    ----------
    raw_mm : (N, 3) ndarray of float
        Skeleton voxel centres along the longest path (isotropic grid).
    smooth_mm : (M, 3) ndarray of float
        The smoothing spline, densely sampled (10 points per mm of raw length).
    """

    raw_mm: np.ndarray
    smooth_mm: np.ndarray


def centerline(
    mask: np.ndarray,
    *,
    spacing_mm: tuple[float, float, float],
    iso_spacing_mm: float = 1.0,
    smoothing_mm: float | None = None,
) -> Centerline | None:
    """Centreline of a tubular binary mask: longest skeleton path and its smoothing spline.

    Parameters
    ----------
    mask : (Z, Y, X) ndarray of bool
        The vessel (one connected component is expected; others are skeletonized too but
        only the longest path is kept).
    spacing_mm : tuple of 3 float
        Voxel size in mm, array order.
    iso_spacing_mm : float, default 1.0
        Isotropic voxel size for skeletonization.
    smoothing_mm : float, optional
        RMS residual of the spline (``s = n * smoothing_mm**2``); default half an iso voxel.

    Returns
    -------
    Centerline or None
        None when the mask is empty or its skeleton has fewer than two end points.
        Coordinates are in mm from the centre of voxel (0, 0, 0), array order.
    """
    spacing = np.asarray(validate_spacing(spacing_mm, mask.ndim))
    iso = positive("iso_spacing_mm", iso_spacing_mm)
    smooth = 0.5 * iso if smoothing_mm is None else positive("smoothing_mm", smoothing_mm)
    box = bbox(np.asarray(mask, dtype=bool), pad=2)
    if box is None:
        return None
    origin_mm = np.array([sl.start for sl in box], dtype=np.float64) * spacing
    return centerline_of_crop(np.asarray(mask[box], dtype=bool), origin_mm, spacing, iso, smooth)


def centerline_of_crop(
    crop: np.ndarray,
    origin_mm: np.ndarray,
    spacing: tuple[float, ...] | np.ndarray,
    iso: float,
    smooth: float,
) -> Centerline | None:
    """`centerline` of a cropped mask whose voxel (0, 0, 0) sits at ``origin_mm``.

    The mask is first cut to its own bounding box plus 2 voxels, so the isotropic grid (and
    the result) does not depend on anything else in the crop.
    """
    sp = np.asarray(spacing, dtype=np.float64)
    box = bbox(crop, pad=2)
    if box is None:
        return None
    crop = crop[box]
    origin_mm = origin_mm + np.array([sl.start for sl in box], dtype=np.float64) * sp
    out_shape = tuple(
        math.floor((n - 1) * s / iso) + 1 for n, s in zip(crop.shape, sp, strict=True)
    )
    # Output voxel m sits at m * iso mm, i.e. input index m * iso / spacing (no offset).
    resampled = ndi.affine_transform(
        crop.astype(np.float32),
        iso / sp,
        output_shape=out_shape,
        order=1,
        mode="constant",
        prefilter=False,
    )
    skeleton = skeletonize(resampled >= 0.5)
    path = _longest_path(skeleton, iso)
    if path is None:
        return None
    raw = path * iso + origin_mm
    return Centerline(raw_mm=raw, smooth_mm=smoothing_spline(raw, smooth))


def _longest_path(skeleton: np.ndarray, iso: float) -> np.ndarray | None:
    """Voxel coordinates of the longest geodesic between two end points of a skeleton.

    The graph is skan's and the shortest paths scipy's; choosing the farthest pair of end
    points (the graph's end-to-end diameter) is hand-written because neither library
    offers it.
    """
    if np.count_nonzero(skeleton) < 2:
        return None
    graph = Skeleton(skeleton, spacing=iso)
    ends = np.flatnonzero(graph.degrees == 1)
    if ends.size < 2:
        return None
    dist, pred = dijkstra(graph.graph, directed=False, indices=ends, return_predecessors=True)
    between = dist[:, ends]
    between[~np.isfinite(between)] = -1.0
    i, j = np.unravel_index(int(np.argmax(between)), between.shape)
    if between[i, j] <= 0:
        return None
    node = int(ends[j])
    nodes = [node]
    while node != ends[i]:
        node = int(pred[i, node])
        nodes.append(node)
    return np.asarray(graph.coordinates, dtype=np.float64)[nodes[::-1]]


def smoothing_spline(points: np.ndarray, smoothing_mm: float) -> np.ndarray:
    """Cubic smoothing spline through ``points`` (``s = n * smoothing_mm**2``), dense samples.

    Falls back to the points themselves when there are too few for a cubic spline.
    """
    n = len(points)
    if n < 4:
        return points.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # splprep's iteration-limit notice
        tck, _ = splprep(points.T, s=n * smoothing_mm**2, k=3)
    n_eval = max(10 * math.ceil(polyline_length(points)), 4 * n)
    return np.column_stack(splev(np.linspace(0.0, 1.0, n_eval), tck))


def polyline_length(points: np.ndarray) -> float:
    return float(np.linalg.norm(np.diff(points, axis=0), axis=1).sum())


def bbox(mask: np.ndarray, *, pad: int) -> tuple[slice, ...] | None:
    """Bounding box of the True voxels, grown by ``pad`` voxels (clipped); None if empty."""
    box = []
    for axis in range(mask.ndim):
        other = tuple(a for a in range(mask.ndim) if a != axis)
        hit = np.flatnonzero(mask.any(axis=other))
        if hit.size == 0:
            return None
        box.append(slice(max(0, hit[0] - pad), min(mask.shape[axis], hit[-1] + 1 + pad)))
    return tuple(box)
