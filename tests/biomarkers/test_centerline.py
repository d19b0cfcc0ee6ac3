"""Vessel centrelines: the smoothed skeleton path lies on the analytic centreline."""

from __future__ import annotations

import numpy as np
import pytest

from mrcohort.biomarkers.centerline import centerline, polyline_length
from mrcohort.phantoms import fixtures as synthetic


def test_centerline_is_in_mm_along_the_tube() -> None:
    case = synthetic.tortuous_tube(1.2, "sinusoidal", spacing_mm=synthetic.GRIDS["ukbb"])
    line = centerline(case.labels > 0, spacing_mm=case.spacing_mm)
    assert line is not None
    truth = case.centerline.points
    # every smoothed point lies within 1.5 mm of the analytic centreline
    d = np.min(np.linalg.norm(line.smooth_mm[::20, None, :] - truth[None, ::10, :], axis=2), axis=1)
    assert d.max() < 1.5


def test_empty_mask_has_no_centerline() -> None:
    assert centerline(np.zeros((10, 10, 10), bool), spacing_mm=synthetic.GRIDS["ukbb"]) is None


def test_straight_line_length_and_argument_checks() -> None:
    mask = np.zeros((40, 9, 9), bool)
    mask[5:35, 3:6, 3:6] = True
    line = centerline(mask, spacing_mm=(2.0, 1.0, 1.0))
    assert line is not None
    # the path runs along z inside the bar (ends about one radius short of the flat cuts)
    assert 50.0 < polyline_length(line.smooth_mm) <= 60.0
    assert np.ptp(line.smooth_mm[:, 1:], axis=0).max() < 1.0
    with pytest.raises(ValueError, match="iso_spacing_mm"):
        centerline(mask, spacing_mm=(2.0, 1.0, 1.0), iso_spacing_mm=-1.0)
    with pytest.raises(ValueError, match="spacing_mm"):
        centerline(mask, spacing_mm=(2.0, 1.0))  # type: ignore[arg-type]
