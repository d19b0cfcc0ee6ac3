"""Solids the phantoms are built from, and the centreline geometry of their tubes.

A solid is a region of space with an axis-aligned bounding box and a vectorised
``contains(x, y, z)`` test (mm). The phantom anatomy (:mod:`mrcohort.phantoms.anatomy`) uses
them in LPS ``(x, y, z)`` order; the analytic fixtures (:mod:`mrcohort.phantoms.fixtures`) use
the same solids in array ``(z, y, x)`` order, which works because every test treats its three
axes alike.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from scipy.spatial import cKDTree

__all__ = [
    "Ellipsoid",
    "EllipticCylinder",
    "Solid",
    "Tube",
    "chord_length",
    "curved_centerline",
    "densify",
    "polyline_length",
]


class Solid(Protocol):
    """A region of space with an axis-aligned bounding box (mm)."""

    def bbox(self) -> tuple[np.ndarray, np.ndarray]: ...

    def contains(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class Ellipsoid:
    """Axis-aligned ellipsoid."""

    center: tuple[float, float, float]
    semi_axes: tuple[float, float, float]

    def bbox(self) -> tuple[np.ndarray, np.ndarray]:
        c, r = np.asarray(self.center), np.asarray(self.semi_axes)
        return c - r, c + r

    def contains(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        (cx, cy, cz), (a, b, c) = self.center, self.semi_axes
        return ((x - cx) / a) ** 2 + ((y - cy) / b) ** 2 + ((z - cz) / c) ** 2 <= 1.0


@dataclass(frozen=True)
class EllipticCylinder:
    """Elliptic cylinder along z between z0 and z1."""

    center_xy: tuple[float, float]
    semi_xy: tuple[float, float]
    z0: float
    z1: float

    def bbox(self) -> tuple[np.ndarray, np.ndarray]:
        (cx, cy), (a, b) = self.center_xy, self.semi_xy
        return np.array([cx - a, cy - b, self.z0]), np.array([cx + a, cy + b, self.z1])

    def contains(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        (cx, cy), (a, b) = self.center_xy, self.semi_xy
        inside = ((x - cx) / a) ** 2 + ((y - cy) / b) ** 2 <= 1.0
        return inside & (z >= self.z0) & (z <= self.z1)


@dataclass(frozen=True, eq=False)
class Tube:
    """All points within ``radius`` of a polyline centreline (rounded ends).

    The centreline is resampled densely (``step_mm``) into a KD-tree, so the distance error is
    below ``step_mm**2 / (8 * radius)``.
    """

    centerline: np.ndarray  # (n, 3) mm
    radius: float
    step_mm: float = 0.25
    _tree: cKDTree = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_tree", cKDTree(densify(self.centerline, self.step_mm)))

    def bbox(self) -> tuple[np.ndarray, np.ndarray]:
        return self.centerline.min(0) - self.radius, self.centerline.max(0) + self.radius

    def contains(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        x, y, z = np.broadcast_arrays(x, y, z)
        pts = np.stack([x.ravel(), y.ravel(), z.ravel()], axis=1)
        dist, _ = self._tree.query(pts, distance_upper_bound=self.radius * 1.001)
        return (dist <= self.radius).reshape(x.shape)


def densify(polyline: np.ndarray, step_mm: float) -> np.ndarray:
    """Resample a polyline so consecutive points are at most ``step_mm`` apart."""
    pts = [polyline[:1]]
    for a, b in itertools.pairwise(polyline):
        n = max(1, math.ceil(float(np.linalg.norm(b - a)) / step_mm))
        t = np.linspace(0.0, 1.0, n + 1)[1:, None]
        pts.append(a + t * (b - a))
    return np.concatenate(pts, axis=0)


def curved_centerline(
    start: np.ndarray, end: np.ndarray, *, amplitude_mm: float, half_waves: int, n: int = 4001
) -> np.ndarray:
    """Centreline ``start + t (end - start) + A sin(pi k t) n`` with n in the coronal plane.

    ``n`` is the unit vector perpendicular to the chord within the plane spanned by the chord
    and the x-z (coronal) directions, so the curve stays at the chord's depth (y) profile.
    """
    d = end - start
    normal = np.array([-d[2], 0.0, d[0]])
    normal /= np.linalg.norm(normal)
    t = np.linspace(0.0, 1.0, n)[:, None]
    return start + t * d + amplitude_mm * np.sin(np.pi * half_waves * t) * normal


def polyline_length(points: np.ndarray) -> float:
    """Length of a polyline (mm)."""
    return float(np.linalg.norm(np.diff(points, axis=0), axis=1).sum())


def chord_length(points: np.ndarray) -> float:
    """Straight-line distance between a polyline's end points (mm)."""
    return float(np.linalg.norm(points[-1] - points[0]))
