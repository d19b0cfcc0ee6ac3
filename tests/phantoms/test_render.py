"""Painting onto a grid (mrcohort.phantoms.render): partial volume and majority labels."""

from __future__ import annotations

import numpy as np
import pytest
from SimpleITK import GetArrayFromImage as voxels

from mrcohort.phantoms import PRESETS
from mrcohort.phantoms.render import Grid, body_grid, subsample_centres


def test_label_map_volume_close_to_truth(participant):
    lab = voxels(participant.labels)
    voxel_ml = float(np.prod(participant.labels.GetSpacing())) / 1000.0
    for row in participant.truth:
        if row["volume_ml"] >= 100:
            n = int((lab == row["label_id"]).sum())
            assert n * voxel_ml == pytest.approx(row["volume_ml"], rel=0.06), row["label_name"]


def test_subsamples_split_each_voxel_evenly():
    centres = subsample_centres(2, 4, 3.0, 2, origin_mm=10.0)
    np.testing.assert_allclose(centres, [15.25, 16.75, 18.25, 19.75])
    np.testing.assert_allclose(subsample_centres(0, 3, 2.0, 1), [0.0, 2.0, 4.0])


def test_grid_images_sit_on_the_grid():
    grid = Grid((1.0, 2.0, 3.0), (0.5, 0.5, 2.0), (4, 3, 5))
    img = grid.image(np.zeros((2, 3, 4), np.float32), z_start=3)
    assert img.GetOrigin() == (1.0, 2.0, 9.0)
    assert img.GetSpacing() == (0.5, 0.5, 2.0)
    np.testing.assert_allclose(grid.axis(2), [3.0, 5.0, 7.0, 9.0, 11.0])


def test_body_grid_spans_the_preset_range():
    pre = PRESETS["mini"]
    grid = body_grid(pre)
    z = grid.axis(2)
    assert z[0] == pre.z_range_mm[0] and z[-1] <= pre.z_range_mm[1] < z[-1] + pre.spacing_mm[2]
    assert grid.size[:2] == pre.size_xy
