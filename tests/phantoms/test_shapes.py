"""Solids and centreline geometry (mrcohort.phantoms.shapes)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import quad

from mrcohort.phantoms.shapes import (
    Ellipsoid,
    EllipticCylinder,
    Tube,
    chord_length,
    curved_centerline,
    densify,
    polyline_length,
)


def test_curved_centerline_length_matches_arc_length_integral():
    start, end = np.array([15.0, 22.0, 590.0]), np.array([80.0, -8.0, 432.0])
    d = float(np.linalg.norm(end - start))
    for amp, k in ((8.0, 1), (20.0, 2), (32.0, 2)):
        line = curved_centerline(start, end, amplitude_mm=amp, half_waves=k)
        # |c'(t)| = sqrt(D^2 + (A pi k cos(pi k t))^2) because the offset is normal to the chord
        exact, _ = quad(
            lambda t, a=amp, k=k: math.hypot(d, a * math.pi * k * math.cos(math.pi * k * t)), 0, 1
        )
        assert polyline_length(line) == pytest.approx(exact, rel=1e-5)
        assert chord_length(line) == pytest.approx(d)


def test_densify_keeps_the_vertices_and_bounds_the_step():
    line = np.array([[0.0, 0.0, 0.0], [10.0, 0.0, 0.0], [10.0, 3.0, 0.0]])
    dense = densify(line, 0.4)
    steps = np.linalg.norm(np.diff(dense, axis=0), axis=1)
    assert steps.max() <= 0.4 + 1e-12
    for vertex in line:
        assert np.min(np.linalg.norm(dense - vertex, axis=1)) == 0.0
    assert polyline_length(dense) == pytest.approx(polyline_length(line))


def test_solids_contain_their_centre_and_not_beyond_the_bounding_box():
    solids = [
        Ellipsoid((1.0, 2.0, 3.0), (4.0, 5.0, 6.0)),
        EllipticCylinder((1.0, 2.0), (4.0, 5.0), -3.0, 9.0),
        Tube(np.array([[0.0, 0.0, 0.0], [10.0, 5.0, 2.0]]), 2.0),
    ]
    for solid in solids:
        lo, hi = solid.bbox()
        centre = (lo + hi) / 2
        assert solid.contains(*centre)
        outside = hi + 0.01
        assert not solid.contains(*outside)


def test_tube_distance_is_exact_to_the_densified_centreline():
    tube = Tube(np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 20.0]]), 3.0)
    x = np.array([2.99, 3.01, 0.0, 0.0])
    z = np.array([10.0, 10.0, -2.99, 23.01])  # rounded ends
    assert tube.contains(x, np.zeros(4), z).tolist() == [True, False, True, False]
